"""Importing the Faster R-CNN tutorial's layout (JSON targets and its old pickled ``.pt``)
through ``import_dataset("tutorial", ...)``, the one tutorial reader."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from formats_helpers import HEADS
from PIL import Image

from napari_detlab.core.annotations.annotation import AnnotationError
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.atomic import UnsafeFileError
from napari_detlab.formats import import_dataset
from napari_detlab.formats.tutorial import read_tutorial_target


def _tutorial_pt(
    path: Path, labels: list[str], boxes: list[list[float]], numpy1: bool = False
) -> Path:
    """Write a target the way the tutorial's first version did: ``torch.save`` of numpy data.

    ``numpy1`` rewrites the pickle's import path to ``numpy.core.multiarray``, as in files
    written under numpy 1 (all of the tutorial's).
    """
    torch.save(
        {"labels": np.array(labels), "boxes": [np.array(b, np.float64) for b in boxes]}, path
    )
    if numpy1:
        original = path.read_bytes()
        with zipfile.ZipFile(path.with_suffix(".tmp"), "w") as out, zipfile.ZipFile(path) as zin:
            for info in zin.infolist():
                data = zin.read(info.filename)
                if info.filename.endswith("data.pkl"):
                    assert b"numpy._core.multiarray\n" in data
                    data = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
                out.writestr(info.filename, data)
        path.with_suffix(".tmp").replace(path)
        assert path.read_bytes() != original
    return path


class _Payload:
    """Unpickling this runs a shell command: the attack a shared ``.pt`` file can carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny tutorial layout: input/ with 4 images (60x40), target/ with their targets."""
    images, targets = tmp_path / "input", tmp_path / "target"
    images.mkdir()
    targets.mkdir()
    for stem in ("a", "b", "c", "d"):
        Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(images / f"{stem}.png")
    return images, targets


def _annotated(images: Path) -> list[str]:
    """Stems that have an annotation file."""
    return sorted(path.stem for path in (images / "annotations").glob("*.pt"))


@pytest.mark.skipif(not HEADS.is_dir(), reason="shared heads dataset not present")
def test_heads_dataset_imports_completely(tmp_path: Path) -> None:
    snapshot = sorted(p.relative_to(HEADS) for p in HEADS.rglob("*"))
    dataset = tmp_path / "heads"
    shutil.copytree(HEADS / "input", dataset)
    report = import_dataset("tutorial", HEADS / "target", dataset)
    assert sorted(p.relative_to(HEADS) for p in HEADS.rglob("*")) == snapshot  # source untouched
    assert report.images == 20 and report.boxes == 177 and report.negatives == 0
    assert report.unmatched == [] and report.problems == []
    store = AnnotationStore(dataset)
    assert len(store.images) == 20
    assert [c.name for c in store.load_classes()] == ["head"]
    total = 0
    for image, annotation in store.annotated():
        source = json.loads((HEADS / "target" / f"{image.stem}.json").read_text())
        assert annotation.labels == source["labels"] and annotation.reviewed
        height, width = annotation.image_size
        expected = np.clip(np.asarray(source["boxes"]), 0, [width, height, width, height])
        np.testing.assert_allclose(annotation.boxes, expected, atol=1e-4)
        total += len(annotation)
    assert total == 177 and len(list(store.annotated())) == 20
    # Boxes drawn past the border in the tutorial were clipped, and counted.
    overshooting = sum(
        int((np.asarray(json.loads(t.read_text())["boxes"]).reshape(-1, 4) < 0).any(axis=1).sum())
        for t in (HEADS / "target").glob("*.json")
    )
    assert report.clipped_boxes >= overshooting > 0
    # A second import changes nothing, and keeps an image the user has edited since.
    edited = store.images[3]
    annotation = store.load(edited)
    annotation.boxes, annotation.labels = annotation.boxes[:1], annotation.labels[:1]
    store.save(edited, annotation)
    again = import_dataset("tutorial", HEADS / "target", dataset)
    assert again.images == 0 and again.unchanged == 19 and again.kept_existing == [edited.name]
    assert len(store.load(edited)) == 1


@pytest.mark.parametrize("numpy1", [False, True])
def test_old_tutorial_pt_targets_import(layout: tuple[Path, Path], numpy1: bool) -> None:
    images, targets = layout
    _tutorial_pt(targets / "a.pt", ["head", "head"], [[1.5, 2.25, 20, 30], [30, 5, 59, 39]], numpy1)
    boxes, labels = read_tutorial_target(targets / "a.pt")
    np.testing.assert_array_equal(boxes, [[1.5, 2.25, 20, 30], [30, 5, 59, 39]])
    assert labels == ["head", "head"]
    report = import_dataset("tutorial", targets, images)
    assert report.images == 1 and report.boxes == 2 and not report.problems
    assert _annotated(images) == ["a"]  # b, c and d stay to be annotated
    data = torch.load(images / "annotations" / "a.pt", weights_only=True)
    assert data["labels"] == ["head", "head"] and data["image_size"] == [40, 60]
    np.testing.assert_array_equal(data["boxes"], np.float32([[1.5, 2.25, 20, 30], [30, 5, 59, 39]]))


def test_json_preferred_over_pt_and_empty_target_is_a_negative(layout: tuple[Path, Path]) -> None:
    images, targets = layout
    (targets / "a.json").write_text(json.dumps({"labels": ["cat"], "boxes": [[1, 1, 9, 9]]}))
    _tutorial_pt(targets / "a.pt", ["dog"], [[2, 2, 8, 8]])
    (targets / "b.json").write_text(json.dumps({"labels": [], "boxes": []}))
    report = import_dataset("tutorial", targets, images)
    store = AnnotationStore(images)
    assert store.load("a").labels == ["cat"]
    negative = store.load("b")
    assert negative is not None and len(negative) == 0 and negative.reviewed
    assert _annotated(images) == ["a", "b"] and report.images == 2 and report.negatives == 1


@pytest.mark.parametrize("kind", ["reduce", "raw_pickle", "object_array"])
def test_malicious_pt_is_refused_without_running(layout: tuple[Path, Path], kind: str) -> None:
    images, targets = layout
    marker = images.parent / "executed"
    evil = targets / "a.pt"
    if kind == "reduce":
        torch.save({"labels": np.array(["head"]), "boxes": [_Payload(marker)]}, evil)
    elif kind == "raw_pickle":
        evil.write_bytes(pickle.dumps({"labels": ["x"], "boxes": _Payload(marker)}, protocol=2))
    else:  # a numpy object array can hold anything: its dtype is not on the allow list
        torch.save(
            {"labels": np.array(["head"]), "boxes": np.array([_Payload(marker)], dtype=object)},
            evil,
        )
    with pytest.raises(AnnotationError, match=r"a\.pt: refused") as caught:
        read_tutorial_target(evil)
    assert isinstance(caught.value.__cause__, UnsafeFileError)
    report = import_dataset("tutorial", targets, images)
    assert not marker.exists()
    assert report.images == 0 and not (images / "annotations" / "a.pt").exists()
    assert any(
        str(evil) in str(problem) and "refused" in str(problem) for problem in report.problems
    )


def test_bad_targets_are_reported_by_file_and_the_rest_imports(layout: tuple[Path, Path]) -> None:
    images, targets = layout
    (targets / "a.json").write_text("{not json")
    (targets / "b.json").write_text(json.dumps({"labels": ["x", "y"], "boxes": [[1, 1, 5, 5]]}))
    (targets / "c.json").write_text(
        json.dumps(
            {
                "labels": ["x", "x", "x"],
                "boxes": [
                    [10, 10, 20, 20],  # fine
                    [-5, 3, 30, 50],  # past the border: clipped to [0, 3, 30, 40]
                    [70, 1, 90, 9],  # wholly outside the 60x40 image: dropped
                ],
            }
        )
    )
    (targets / "d.json").write_text(
        json.dumps(
            {
                "labels": ["x", "x", "x"],
                "boxes": [
                    [10, 10, 20, 20],  # fine, but the image misses two boxes: left out
                    [5, 5, 5, 9],  # no width
                    [1, 1, float("nan"), 4],  # NaN (json.dumps writes NaN)
                ],
            }
        )
    )
    (targets / "zz.json").write_text(json.dumps({"labels": [], "boxes": []}))
    report = import_dataset("tutorial", targets, images)
    problems = "\n".join(str(problem) for problem in report.problems)
    assert f"{targets / 'a.json'}: not a readable JSON target" in problems
    assert f"{targets / 'b.json'}: 1 boxes but 2 labels" in problems
    assert f"{targets / 'c.json'}: c: box 2" in problems and "outside the 60x40 image" in problems
    assert f"{targets / 'd.json'}: box 1: [5.0, 5.0, 5.0, 9.0] has no area" in problems
    assert f"{targets / 'd.json'}: box 2" in problems and "non-finite" in problems
    assert f"{targets / 'd.json'}: d: 2 of its boxes could not be read" in problems
    assert report.unmatched == ["zz"]  # a target without an image
    assert report.clipped_boxes == 1  # box 1 of c; the box dropped is not counted as clipped
    assert report.images == 1 and _annotated(images) == ["c"]
    annotation = AnnotationStore(images).load("c")
    np.testing.assert_array_equal(annotation.boxes, [[10, 10, 20, 20], [0, 3, 30, 40]])


def test_existing_annotations_are_kept_unless_overwrite(layout: tuple[Path, Path]) -> None:
    images, targets = layout
    (targets / "a.json").write_text(json.dumps({"labels": ["x"], "boxes": [[1, 1, 9, 9]]}))
    import_dataset("tutorial", targets, images)
    (targets / "a.json").write_text(json.dumps({"labels": ["y"], "boxes": [[2, 2, 9, 9]]}))
    report = import_dataset("tutorial", targets, images)
    assert report.kept_existing == ["a.png"] and AnnotationStore(images).load("a").labels == ["x"]
    report = import_dataset("tutorial", targets, images, overwrite=True)
    assert report.images == 1 and AnnotationStore(images).load("a").labels == ["y"]
    # The class list grows with the imported labels, keeping earlier ones.
    assert [c.name for c in AnnotationStore(images).load_classes()] == ["x", "y"]


def test_missing_targets_folder_is_an_error(layout: tuple[Path, Path]) -> None:
    images, _ = layout
    with pytest.raises(FileNotFoundError, match="nowhere"):
        import_dataset("tutorial", images.parent / "nowhere", images)


def test_broken_image_is_reported_and_skipped(layout: tuple[Path, Path]) -> None:
    images, targets = layout
    (images / "b.png").write_bytes(b"not an image")
    (targets / "b.json").write_text(json.dumps({"labels": ["x"], "boxes": [[1, 1, 9, 9]]}))
    shutil.copy(targets / "b.json", targets / "c.json")
    report = import_dataset("tutorial", targets, images)
    assert report.images == 1 and _annotated(images) == ["c"]
    assert any("b.png" in str(problem) for problem in report.problems)


def test_the_store_rule_clips_and_keeps_any_area_left_inside(layout: tuple[Path, Path]) -> None:
    """The one cleaning rule (the store's ``sanitize_boxes``) as an import applies it: clip
    to the image, keep what still has an area however thin, drop what lies on or past the
    border, and count as clipped only the boxes kept."""
    images, targets = layout
    boxes = [
        [10, 10, 10.5, 20],  # half a pixel wide, inside: kept as it is
        [59.5, 1, 70, 9],  # reaches past the right border: clipped to half a pixel, kept
        [60, 1, 70, 9],  # starts on the border: nothing left inside, dropped
        [-3, -2, 61, 41],  # the whole image and more: clipped to the image
    ]
    (targets / "a.json").write_text(json.dumps({"labels": ["x"] * 4, "boxes": boxes}))
    report = import_dataset("tutorial", targets, images)
    annotation = AnnotationStore(images).load("a")
    np.testing.assert_array_equal(
        annotation.boxes, [[10, 10, 10.5, 20], [59.5, 1, 60, 9], [0, 0, 60, 40]]
    )
    assert report.clipped_boxes == 2 and report.boxes == 3
    (problem,) = report.problems
    assert problem.message.startswith("box 2 [60.0, 1.0, 70.0, 9.0] lies wholly outside")
