"""Counts in the words a person reads: "1 image", "2 images", never "1 problems".

Reports, summaries and notifications put numbers before nouns everywhere (an export's
summary, the anchor figures, the Review's dataset line); :func:`counted` is the one place
that chooses the singular or the plural, so they all read the same.
"""

from __future__ import annotations

__all__ = ["counted"]


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``count`` and the noun in the form it takes: ``counted(1, "box", "boxes")`` is
    ``"1 box"``, ``counted(0, "image")`` is ``"0 images"``.

    Parameters
    ----------
    count
        How many.
    singular
        The noun for one (``"image"``, ``"negative"``, ``"annotated image"``).
    plural
        The noun for any other number, when adding an ``s`` is wrong (``"boxes"``).
    """
    noun = singular if count == 1 else (plural or f"{singular}s")
    return f"{count} {noun}"
