"""Importing the Faster R-CNN tutorial's layout (JSON targets and its old pickled ``.pt``)."""

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
from PIL import Image

from napari_detlab.core.annotations.store import AnnotationError, AnnotationStore
from napari_detlab.core.atomic import UnsafeFileError
from napari_detlab.core.legacy import import_tutorial_layout, read_tutorial_target

HEADS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "heads"


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


@pytest.mark.skipif(not HEADS.is_dir(), reason="shared heads dataset not present")
def test_heads_dataset_imports_completely(tmp_path: Path) -> None:
    snapshot = sorted(p.relative_to(HEADS) for p in HEADS.rglob("*"))
    report = import_tutorial_layout(HEADS / "input", HEADS / "target", tmp_path / "heads")
    assert sorted(p.relative_to(HEADS) for p in HEADS.rglob("*")) == snapshot  # source untouched
    assert len(report.imported) == 20 and report.boxes == 177 and report.copied == 20
    assert report.unannotated == [] and report.problems == []
    store = AnnotationStore(tmp_path / "heads")
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
    assert total == 177
    # Boxes drawn past the border in the tutorial were clipped, each one reported.
    assert report.clipped and all("clipped to" in line for line in report.clipped)
    # A second import keeps what is there (the user may have edited it since).
    again = import_tutorial_layout(HEADS / "input", HEADS / "target", tmp_path / "heads")
    assert again.imported == [] and len(again.kept) == 20 and again.copied == 0


@pytest.mark.parametrize("numpy1", [False, True])
def test_old_tutorial_pt_targets_import(layout: tuple[Path, Path], numpy1: bool) -> None:
    images, targets = layout
    _tutorial_pt(targets / "a.pt", ["head", "head"], [[1.5, 2.25, 20, 30], [30, 5, 59, 39]], numpy1)
    boxes, labels = read_tutorial_target(targets / "a.pt")
    np.testing.assert_array_equal(boxes, [[1.5, 2.25, 20, 30], [30, 5, 59, 39]])
    assert labels == ["head", "head"]
    report = import_tutorial_layout(images, targets)
    assert report.imported == ["a"] and report.boxes == 2
    assert report.unannotated == ["b", "c", "d"]
    data = torch.load(images / "annotations" / "a.pt", weights_only=True)
    assert data["labels"] == ["head", "head"] and data["image_size"] == [40, 60]
    np.testing.assert_array_equal(data["boxes"], np.float32([[1.5, 2.25, 20, 30], [30, 5, 59, 39]]))
    assert not (images / "annotations" / "b.pt").exists()


def test_json_preferred_over_pt_and_empty_target_is_a_negative(layout: tuple[Path, Path]) -> None:
    images, targets = layout
    (targets / "a.json").write_text(json.dumps({"labels": ["cat"], "boxes": [[1, 1, 9, 9]]}))
    _tutorial_pt(targets / "a.pt", ["dog"], [[2, 2, 8, 8]])
    (targets / "b.json").write_text(json.dumps({"labels": [], "boxes": []}))
    report = import_tutorial_layout(images, targets)
    store = AnnotationStore(images)
    assert store.load("a").labels == ["cat"]
    negative = store.load("b")
    assert negative is not None and len(negative) == 0 and negative.reviewed
    assert report.imported == ["a", "b"]


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
    report = import_tutorial_layout(images, targets)
    assert not marker.exists()
    assert "a" in report.unannotated and "a" not in report.imported
    assert any(str(evil) in line and "refused" in line for line in report.problems)
    assert not (images / "annotations" / "a.pt").exists()


def test_bad_targets_are_reported_by_file_and_the_rest_imports(layout: tuple[Path, Path]) -> None:
    images, targets = layout
    (targets / "a.json").write_text("{not json")
    (targets / "b.json").write_text(json.dumps({"labels": ["x", "y"], "boxes": [[1, 1, 5, 5]]}))
    (targets / "c.json").write_text(
        json.dumps(
            {
                "labels": ["x", "x", "x", "x", "x"],
                "boxes": [
                    [10, 10, 20, 20],  # fine
                    [-5, 3, 30, 50],  # past the border: clipped to [0, 3, 30, 40]
                    [70, 1, 90, 9],  # wholly outside the 60x40 image: dropped
                    [5, 5, 5, 9],  # no width: dropped
                    [1, 1, float("nan"), 4],  # NaN (json.dumps writes NaN): dropped
                ],
            }
        )
    )
    (targets / "zz.json").write_text(json.dumps({"labels": [], "boxes": []}))
    report = import_tutorial_layout(images, targets)
    problems = "\n".join(report.problems)
    assert f"{targets / 'a.json'}: not a readable JSON target" in problems
    assert f"{targets / 'b.json'}: 1 boxes but 2 labels" in problems
    assert f"{targets / 'c.json'}: box 2" in problems and "outside the 60x40 image" in problems
    assert f"{targets / 'c.json'}: box 3" in problems and f"{targets / 'c.json'}: box 4" in problems
    assert f"{targets / 'zz.json'}: no image named zz" in problems
    assert len(report.clipped) == 1 and "box 1" in report.clipped[0]
    assert report.imported == ["c"] and report.unannotated == ["a", "b", "d"]
    annotation = AnnotationStore(images).load("c")
    np.testing.assert_array_equal(annotation.boxes, [[10, 10, 20, 20], [0, 3, 30, 40]])


def test_import_into_another_folder_links_or_copies_images(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    images, targets = layout
    (targets / "a.json").write_text(json.dumps({"labels": ["x"], "boxes": [[1, 1, 9, 9]]}))
    dataset = tmp_path / "dataset"
    report = import_tutorial_layout(images, targets, dataset)
    assert report.copied == 4 and report.imported == ["a"]
    assert sorted(p.name for p in dataset.glob("*.png")) == ["a.png", "b.png", "c.png", "d.png"]
    assert (dataset / "a.png").read_bytes() == (images / "a.png").read_bytes()
    assert not (images / "annotations").exists()  # the original folder is left alone
    assert AnnotationStore(dataset).load("a").labels == ["x"]


def test_existing_annotations_are_kept_unless_overwrite(layout: tuple[Path, Path]) -> None:
    images, targets = layout
    (targets / "a.json").write_text(json.dumps({"labels": ["x"], "boxes": [[1, 1, 9, 9]]}))
    import_tutorial_layout(images, targets)
    (targets / "a.json").write_text(json.dumps({"labels": ["y"], "boxes": [[2, 2, 9, 9]]}))
    report = import_tutorial_layout(images, targets)
    assert report.kept == ["a"] and AnnotationStore(images).load("a").labels == ["x"]
    report = import_tutorial_layout(images, targets, overwrite=True)
    assert report.imported == ["a"] and AnnotationStore(images).load("a").labels == ["y"]
    # The class list grows with the imported labels, keeping earlier ones.
    assert [c.name for c in AnnotationStore(images).load_classes()] == ["x", "y"]


def test_missing_targets_folder_is_an_error(layout: tuple[Path, Path]) -> None:
    images, _ = layout
    with pytest.raises(FileNotFoundError, match="nowhere"):
        import_tutorial_layout(images, images.parent / "nowhere")


def test_broken_image_is_reported_and_skipped(layout: tuple[Path, Path]) -> None:
    images, targets = layout
    (images / "b.png").write_bytes(b"not an image")
    (targets / "b.json").write_text(json.dumps({"labels": ["x"], "boxes": [[1, 1, 9, 9]]}))
    shutil.copy(targets / "b.json", targets / "c.json")
    report = import_tutorial_layout(images, targets)
    assert report.imported == ["c"]
    assert any("b.png" in line for line in report.problems)
