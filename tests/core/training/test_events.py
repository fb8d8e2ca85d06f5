"""How training events read to a person: the ETA."""

from __future__ import annotations

from napari_detlab.core.training.events import format_duration


def test_eta_text_ignores_values_that_are_not_yet_known():
    assert [format_duration(s) for s in (float("nan"), float("inf"), -1, 42, 185, 3725)] == [
        "?", "?", "?", "42s", "3m05s", "1h02m",
    ]  # fmt: skip
