"""``detlab train`` with a settings file of the wrong types: one line, exit code 2, nothing run."""

from __future__ import annotations

import pytest

from napari_detlab.cli.main import main
from napari_detlab.core.annotations.sample_data import write_synthetic_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("bad") / "data", 3, size=(48, 48))


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        ("--config", '{"fpn": "false"}', "config field 'fpn' must be true or false"),
        ("--config", '{"classes": "cell"}', "config field 'classes' must be a list of texts"),
        ("--config", '{"min_size": "800"}', "config field 'min_size' must be a whole number"),
        ("--options", '{"epochs": "2"}', "training option field 'epochs' must be a whole number"),
    ],
)
def test_a_mistyped_settings_file_is_one_line_and_exit_2(
    dataset, tmp_path, capsys, flag, text, message
):
    settings = tmp_path / "settings.json"
    settings.write_text(text)
    code = main(["train", str(dataset), "--output", str(tmp_path / "run"), flag, str(settings)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before anything was written
