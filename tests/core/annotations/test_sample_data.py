"""The built-in sample dataset: exact boxes, two classes, negatives, work left to do, and
a second call that never touches the user's edits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.sample_data import (
    SAMPLE_CLASSES,
    Scene,
    render_scene,
    sample_ground_truth,
    write_sample_dataset,
    write_synthetic_dataset,
)
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.images import read_image

# The Gaussian blur that softens object outlines reaches this far (3 sigma, sigma 0.7 px).
BLUR_REACH = 3


def _object_signal(
    seed: int, height: int, width: int, **kwargs: object
) -> tuple[Scene, np.ndarray]:
    """A scene and, per pixel, how much its objects changed the image.

    The same seed with ``empty=True`` renders the identical backdrop and noise without the
    objects, so the difference is the objects' own contribution and nothing else.
    """
    scene = render_scene(np.random.default_rng(seed), height, width, **kwargs)
    backdrop = render_scene(np.random.default_rng(seed), height, width, empty=True, **kwargs)
    signal = np.abs(scene.image.astype(int) - backdrop.image.astype(int)).sum(axis=-1)
    return scene, signal


def _sides(signal: np.ndarray, box: np.ndarray) -> list[int]:
    """The strongest object signal on each side (left, right, top, bottom) of a box."""
    height, width = signal.shape
    x1, y1, x2, y2 = (int(v) for v in box)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    lines = (signal[y1:y2, x1], signal[y1:y2, x2 - 1], signal[y1, x1:x2], signal[y2 - 1, x1:x2])
    return [int(line.max()) for line in lines]


@pytest.mark.parametrize("seed", range(12))
def test_boxes_are_the_exact_extent_of_the_drawn_objects(seed: int) -> None:
    scene, signal = _object_signal(seed, 180, 230)
    assert scene.image.shape == (180, 230, 3) and scene.image.dtype == np.uint8
    assert len(scene.boxes) == len(scene.labels) == len(scene.masks) >= 1
    for box, mask in zip(scene.boxes, scene.masks, strict=True):
        x1, y1, x2, y2 = box.astype(int)
        np.testing.assert_array_equal(box, np.round(box))  # pixel edges: x2 = last column + 1
        assert 0 <= x1 < x2 <= 230 and 0 <= y1 < y2 <= 180
        assert mask[:, x1].any() and mask[:, x2 - 1].any()  # first and last covered column
        assert mask[y1, :].any() and mask[y2 - 1, :].any()
        assert mask[y1:y2, x1:x2].sum() == mask.sum()  # nothing outside the box
        # In the rendered pixels, every side of the box touches its object ...
        assert min(_sides(signal, box)) > 40
    # ... and outside all boxes (beyond the blur) the image is the untouched backdrop.
    near_objects = np.zeros(signal.shape, bool)
    for x1, y1, x2, y2 in scene.boxes.astype(int):
        near_objects[
            max(0, y1 - BLUR_REACH) : y2 + BLUR_REACH, max(0, x1 - BLUR_REACH) : x2 + BLUR_REACH
        ] = True
    assert signal[~near_objects].max(initial=0) == 0


def test_a_box_grown_past_the_blur_is_detected() -> None:
    """The side check above can fail: past the blur a grown box's sides see no object."""
    scene, signal = _object_signal(11, 160, 160, max_objects=1)
    box = scene.boxes[0]
    grown = box + np.array([-1, -1, 1, 1]) * (BLUR_REACH + 1)
    inside = (grown[:2] >= 0).all() and grown[2] <= 160 and grown[3] <= 160
    assert inside, "pick a seed whose object is away from the border"
    assert max(_sides(signal, grown)) == 0
    assert min(_sides(signal, box)) > 40


def test_scenes_are_deterministic_and_varied() -> None:
    first = render_scene(np.random.default_rng(5), 128, 96)
    again = render_scene(np.random.default_rng(5), 128, 96)
    other = render_scene(np.random.default_rng(6), 128, 96)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.boxes, again.boxes)
    assert first.labels == again.labels
    assert not np.array_equal(first.image, other.image)
    assert first.boxes.dtype == np.float64 and first.boxes.shape[1] == 4


def test_scenes_cover_both_classes_many_sizes_and_the_border() -> None:
    labels: list[str] = []
    sides: list[float] = []
    touching = 0
    for seed in range(30):
        scene = render_scene(np.random.default_rng(seed), 256, 320)
        boxes, scene_labels = scene.boxes, scene.labels
        labels += scene_labels
        sides += list(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]))
        touching += int(((boxes[:, :2] == 0) | (boxes[:, 2:] == [320, 256])).any(axis=1).sum())
    assert set(labels) == set(SAMPLE_CLASSES)
    assert min(labels.count(name) for name in SAMPLE_CLASSES) > 0.3 * len(labels)
    assert min(sides) < 25 and max(sides) > 90  # anchors have small and large objects to cover
    assert touching >= 5  # objects cut by the image border, as in real photographs


def test_classes_are_told_apart_by_colour_alone() -> None:
    """Cells are magenta (red over green), crystals cyan (green over red): a detector
    trained from scratch has an easy cue, on top of round versus angular outlines."""
    for seed in range(15):
        scene = render_scene(np.random.default_rng(seed), 200, 200)
        for mask, label in zip(scene.masks, scene.labels, strict=True):
            red, green, _ = scene.image[mask].astype(float).mean(axis=0)
            assert (red > green + 30) == (label == "cell"), (seed, label, red, green)


def test_empty_scene_and_extra_classes() -> None:
    empty = render_scene(np.random.default_rng(0), 64, 64, empty=True)
    assert empty.image.shape == (64, 64, 3) and empty.boxes.shape == (0, 4) and empty.labels == []
    classes = ("a", "b", "c")
    seen: set[str] = set()
    for seed in range(10):
        labels = render_scene(
            np.random.default_rng(seed), 128, 128, classes=classes, max_objects=3
        ).labels
        assert 1 <= len(labels) <= 3 and set(labels) <= set(classes)
        seen |= set(labels)
    assert seen == set(classes)
    with pytest.raises(ValueError, match="16x16"):
        render_scene(np.random.default_rng(0), 8, 64)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_dataset(tmp_path_factory.mktemp("sample") / "detlab-sample")


def _annotations(folder: Path) -> dict[str, ImageAnnotation | None]:
    store = AnnotationStore(folder)
    return {image.name: store.load(image) for image in store.images}


def test_sample_dataset_layout(sample: Path) -> None:
    annotations = _annotations(sample)
    assert len(annotations) == 24
    suffixes = {Path(name).suffix for name in annotations}
    assert suffixes == {".png", ".jpg"}
    sizes = {read_image(sample / name).shape[:2] for name in annotations}
    assert (256, 320) in sizes and len(sizes) >= 3
    annotated = {name: a for name, a in annotations.items() if a is not None}
    negatives = [name for name, a in annotated.items() if len(a) == 0]
    unannotated = [name for name, a in annotations.items() if a is None]
    assert len(negatives) == 3 and len(unannotated) == 4
    assert all(a.reviewed for a in annotated.values())
    # Negatives really are empty, the images left to annotate really hold objects, and the
    # files hold exactly the true boxes.
    truth = sample_ground_truth()
    assert truth.keys() == annotations.keys()
    assert all(len(truth[name][0]) == 0 for name in negatives)
    assert all(len(truth[name][0]) > 0 for name in unannotated)
    for name, annotation in annotated.items():
        np.testing.assert_array_equal(annotation.boxes, truth[name][0].astype(np.float32))
        assert annotation.labels == truth[name][1]
    labels = [label for a in annotated.values() for label in a.labels]
    assert {labels.count(name) for name in SAMPLE_CLASSES} and min(
        labels.count(n) for n in SAMPLE_CLASSES
    ) >= 20
    for name, annotation in annotated.items():
        height, width = read_image(sample / name).shape[:2]
        assert annotation.image_size == (height, width)
        boxes = annotation.boxes
        assert (
            (boxes[:, :2] >= 0).all()
            and (boxes[:, 2] <= width).all()
            and (boxes[:, 3] <= height).all()
        )
    classes = AnnotationStore(sample).load_classes()
    assert [c.name for c in classes] == list(SAMPLE_CLASSES)
    assert all(c.color.startswith("#") and len(c.color) == 7 for c in classes)


def test_sample_files_load_with_plain_torch(sample: Path) -> None:
    for path in (sample / "annotations").glob("*.pt"):
        data = torch.load(path, weights_only=True)
        assert data["boxes"].dtype == torch.float32 and len(data["labels"]) == len(data["boxes"])


def test_sample_dataset_is_deterministic(sample: Path, tmp_path: Path) -> None:
    again = write_sample_dataset(tmp_path / "again")
    for image in AnnotationStore(sample).images:
        assert (again / image.name).read_bytes() == image.read_bytes()
    first, second = _annotations(sample), _annotations(again)
    assert first.keys() == second.keys()
    for name, annotation in first.items():
        assert (annotation is None and second[name] is None) or annotation.same_as(second[name])
    different = write_sample_dataset(tmp_path / "other", seed=1)
    assert (different / "sample_01.png").read_bytes() != (sample / "sample_01.png").read_bytes()


def test_second_call_keeps_the_users_edits(tmp_path: Path) -> None:
    folder = write_sample_dataset(tmp_path / "data")
    store = AnnotationStore(folder)
    edited = store.images[0]
    annotation = store.load(edited)
    assert annotation is not None and len(annotation) > 1
    annotation.boxes, annotation.labels = annotation.boxes[:1], annotation.labels[:1]
    store.save(edited, annotation)
    newly_annotated = next(image for image in store.images if not store.has(image))
    store.save(newly_annotated, ImageAnnotation([[1, 1, 20, 20]], ["cell"], reviewed=True))
    snapshot = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}

    assert write_sample_dataset(folder) == folder
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    assert after == snapshot


def test_half_written_folder_is_completed_without_overwriting(tmp_path: Path, sample: Path) -> None:
    folder = write_sample_dataset(tmp_path / "data")
    (folder / ".detlab-sample").unlink()  # as if the first call was killed before the end
    missing = folder / "sample_24.png"
    missing.unlink()
    store = AnnotationStore(folder)
    kept = store.images[0]
    store.save(kept, ImageAnnotation([[2, 2, 30, 30]], ["crystal"], reviewed=True))
    write_sample_dataset(folder)
    assert missing.read_bytes() == (sample / "sample_24.png").read_bytes()
    assert store.load(kept).labels == ["crystal"]


def test_folder_with_other_images_is_refused(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path, 1)
    with pytest.raises(FileExistsError, match="img_0000"):
        write_sample_dataset(tmp_path)


def test_synthetic_dataset_is_fully_annotated(tmp_path: Path) -> None:
    folder = write_synthetic_dataset(tmp_path / "synth", 6, size=(96, 128), seed=3, negatives=2)
    store = AnnotationStore(folder)
    assert [p.name for p in store.images] == [f"img_{i:04d}.png" for i in range(6)]
    annotations = [store.load(image) for image in store.images]
    assert all(a is not None and a.reviewed and a.image_size == (96, 128) for a in annotations)
    assert [len(a) == 0 for a in annotations] == [False] * 4 + [True] * 2
    assert all(read_image(image).shape == (96, 128, 3) for image in store.images)
    assert [c.name for c in store.load_classes()] == list(SAMPLE_CLASSES)
    with pytest.raises(ValueError, match="negatives"):
        write_synthetic_dataset(tmp_path / "bad", 2, negatives=3)
