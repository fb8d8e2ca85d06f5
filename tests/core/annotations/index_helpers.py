"""What the index tests share: a small dataset, counting the annotation files read, and
another program rewriting one in place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from napari_detlab.core.annotations import store as store_module
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore

HEIGHT, WIDTH = 40, 60
CLASSES = ("cell", "dust", "rock")


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the annotation files the store reads from disk from now on (the saved
    index is read by ``saved_index``, not counted)."""
    seen: list[str] = []
    real = store_module.safe_torch_load

    def counting(path: Path, **kwargs: object) -> object:
        seen.append(Path(path).name)
        return real(path, **kwargs)

    monkeypatch.setattr(store_module, "safe_torch_load", counting)
    return seen


def relabel_in_place(path: Path, label: str) -> None:
    """What another program may do: give every box ``label`` and write the dict back into
    the same inode."""
    data = torch.load(path, weights_only=True)
    data["labels"] = [label] * len(data["labels"])
    with open(path, "r+b") as handle:  # same inode, no rename
        handle.truncate(0)
        torch.save(data, handle)


def write_dataset(
    root: Path, images: int, annotated: int, *, negative: int, no_size: int, seed: int
) -> Path:
    """``images`` blank PNGs of 40 x 60; the first ``annotated`` with 1-3 boxes of three
    classes, except ``negative`` (a reviewed negative) and ``no_size`` (a file without
    ``image_size``: its boxes are held to the image's header)."""
    rng = np.random.default_rng(seed)
    for index in range(images):
        Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(root / f"im{index}.png")
    store = AnnotationStore(root)
    for index in range(annotated):
        count = 0 if index == negative else int(rng.integers(1, 4))
        x, y = rng.uniform(0, 40, count), rng.uniform(0, 25, count)
        boxes = np.stack([x, y, x + 10, y + 10], axis=1).reshape(-1, 4)
        labels = [CLASSES[int(i)] for i in rng.integers(0, 3, count)]
        size = None if index == no_size else (HEIGHT, WIDTH)
        store.save(f"im{index}.png", ImageAnnotation(boxes, labels, True, size))
    return root
