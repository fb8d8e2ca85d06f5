"""Which predicted images the model trained on, which it was validated on, and which it never saw.

Scoring a model on the images it learnt from flatters it, so the Review's dataset figures
and ``detlab evaluate`` report each group apart. The split is found without the user's help:

* every prediction file names the checkpoint that made it (``detlab predict`` and the train
  dock write its absolute path);
* a checkpoint records the split it was trained with (``"split"``, since this version);
* for an older checkpoint, the ``split.json`` its training run wrote beside it is used.

An image whose checkpoint cannot be found, or records no split, is ``"unknown"``; an image
that is in neither list of a known split was annotated after that training (``"new"``): the
model never saw it. A split can also be given by hand (:func:`read_run_split`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.checkpoint import read_checkpoint_split

__all__ = [
    "SPLIT_GROUPS",
    "RunSplit",
    "SplitSourceError",
    "group_stems",
    "read_run_split",
    "split_of_checkpoint",
]

# In the order they are shown: the honest figure first.
SPLIT_GROUPS = ("validation", "training", "new", "unknown")
SPLIT_FILE = "split.json"


class SplitSourceError(DetlabError, ValueError):
    """A split given by hand that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class RunSplit:
    """The images a checkpoint was trained and validated on.

    Attributes
    ----------
    train, val
        Image stems.
    source
        Where it was read (a checkpoint or a ``split.json``), for the figures' caption.
    """

    train: frozenset[str]
    val: frozenset[str]
    source: str

    def group_of(self, stem: str) -> str:
        """``"validation"``, ``"training"`` or ``"new"`` (in neither list)."""
        if stem in self.val:
            return "validation"
        if stem in self.train:
            return "training"
        return "new"


def _split_from(data: object, source: str) -> RunSplit | None:
    if not isinstance(data, Mapping):
        return None
    sides = [data.get("train", []), data.get("val")]
    if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in sides):
        return None
    train, val = (frozenset(Path(name).stem for name in names) for names in sides)
    return RunSplit(train, val, source)


def _read_split_json(path: Path) -> RunSplit | None:
    try:
        return _split_from(json.loads(path.read_text(encoding="utf-8")), str(path))
    except (OSError, ValueError):
        return None


def split_of_checkpoint(checkpoint: str | Path) -> RunSplit | None:
    """The split a checkpoint was trained with: its own record, else its run's ``split.json``.

    ``None`` when neither exists or can be read: evaluation then says "unknown" rather than
    refusing to score.
    """
    path = Path(checkpoint)
    if not path.is_file():
        return None
    recorded = read_checkpoint_split(path)
    if recorded is not None:
        return _split_from(recorded, str(path))
    beside = path.parent / SPLIT_FILE
    return _read_split_json(beside) if beside.is_file() else None


def read_run_split(path: str | Path) -> RunSplit:
    """A split given by hand: a checkpoint, a run folder, or a ``{"train", "val"}`` JSON file.

    Raises
    ------
    SplitSourceError
        Nothing there, or no split in it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SPLIT_FILE
    if not path.is_file():
        raise SplitSourceError(
            f"{path}: no such file; give a checkpoint, a training run folder or its split.json"
        )
    found = _read_split_json(path) if path.suffix.lower() == ".json" else split_of_checkpoint(path)
    if found is None:
        raise SplitSourceError(
            f'{path}: holds no split (a JSON object with "train" and "val" lists of image '
            "names, or a checkpoint trained by this version); give the run's split.json"
        )
    return found


def group_stems(
    checkpoints: Mapping[str, str],
    *,
    override: RunSplit | None = None,
    lookup: Callable[[str], RunSplit | None] = split_of_checkpoint,
) -> tuple[dict[str, str], list[str]]:
    """Each image's group (one of :data:`SPLIT_GROUPS`) and where the splits came from.

    Parameters
    ----------
    checkpoints
        ``{stem: checkpoint path its prediction file names}`` (``""`` when unknown).
    override
        A split to use for every image instead of the checkpoints' own.
    lookup
        Reads one checkpoint's split (the dock passes one that keeps the answer while the
        file is unchanged); called once per distinct checkpoint.
    """
    if override is not None:
        return {stem: override.group_of(stem) for stem in checkpoints}, [override.source]
    splits: dict[str, RunSplit | None] = {}
    groups: dict[str, str] = {}
    for stem, checkpoint in checkpoints.items():
        if checkpoint not in splits:
            splits[checkpoint] = lookup(checkpoint) if checkpoint else None
        split = splits[checkpoint]
        groups[stem] = "unknown" if split is None else split.group_of(stem)
    sources = sorted({split.source for split in splits.values() if split is not None})
    return groups, sources
