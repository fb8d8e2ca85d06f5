"""The napari reader and writer, through napari's own open/save and plugin manager."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v3 as iio
import npe2
import numpy as np
import pytest
import torch

from napari_detlab._reader import get_reader
from napari_detlab._writer import write_shapes_layers
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.atomic import safe_torch_load
from napari_detlab.core.boxes import napari_to_xyxy
from oriented_photos import SHOWN, as_other_tools_show, save_version_1, write_photo

PLUGIN = "napari-detlab"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """img1 unannotated, img2 with three boxes of two classes, img3 a negative."""
    folder = tmp_path / "ds"
    folder.mkdir()
    for index, size in enumerate([(40, 60), (50, 70), (30, 30)], start=1):
        iio.imwrite(folder / f"img{index}.png", np.full((*size, 3), 40 * index, np.uint8))
    store = AnnotationStore(folder)
    store.save_classes(
        [
            ClassSpec("cell", "#ff0000"),
            ClassSpec("crystal", "#00ff00"),
            ClassSpec("dust", "#0000ff"),
        ]
    )
    store.save(
        "img2",
        ImageAnnotation(
            [[1, 2, 11, 12], [5.5, 6, 20, 30], [0, 0, 70, 50]],
            ["cell", "crystal", "cell"],
            True,
            (50, 70),
        ),
    )
    store.save("img3", ImageAnnotation([], [], True, (30, 30)))
    return folder


def _layers_by_name(viewer) -> dict[str, object]:
    return {layer.name: layer for layer in viewer.layers}


def test_manifest_offers_the_reader_for_folders_and_pt_files(dataset: Path) -> None:
    manager = npe2.PluginManager.instance()
    manager.discover()  # napari does this on start-up; the test has no viewer
    folder_readers = [r.command for r in manager.iter_compatible_readers([str(dataset)])]
    file_readers = [
        r.command
        for r in manager.iter_compatible_readers([str(dataset / "annotations" / "img2.pt")])
    ]
    assert f"{PLUGIN}.get_reader" in folder_readers and f"{PLUGIN}.get_reader" in file_readers
    writers = [w.command for w in manager.iter_compatible_writers(["shapes", "shapes"])]
    assert f"{PLUGIN}.write_shapes" in writers


def test_opening_a_dataset_folder_shows_the_first_annotated_image_per_class(
    make_napari_viewer, dataset: Path
) -> None:
    viewer = make_napari_viewer()
    viewer.open(str(dataset), plugin=PLUGIN)
    layers = _layers_by_name(viewer)
    assert list(layers) == ["img2.png", "boxes: cell", "boxes: crystal", "boxes: dust"]
    assert layers["img2.png"].data.shape == (50, 70, 3)
    cell, crystal = layers["boxes: cell"], layers["boxes: crystal"]
    assert cell.nshapes == 2 and crystal.nshapes == 1 and layers["boxes: dust"].nshapes == 0
    # Rectangles in (row, col): the first cell box spans rows 2..12 and columns 1..11.
    np.testing.assert_allclose(cell.data[0].min(axis=0), [2, 1])
    np.testing.assert_allclose(cell.data[0].max(axis=0), [12, 11])
    np.testing.assert_allclose(cell.edge_color[0], [1, 0, 0, 1])
    assert list(cell.features["class"]) == ["cell", "cell"]


def test_opening_an_annotation_file_finds_its_image(make_napari_viewer, dataset: Path) -> None:
    viewer = make_napari_viewer()
    viewer.open(str(dataset / "annotations" / "img3.pt"), plugin=PLUGIN)
    layers = _layers_by_name(viewer)
    assert "img3.png" in layers and layers["img3.png"].data.shape == (30, 30, 3)
    assert all(layer.nshapes == 0 for name, layer in layers.items() if name.startswith("boxes: "))


def test_prediction_files_open_with_scores(tmp_path: Path) -> None:
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    torch.save(
        {
            "boxes": torch.tensor([[1.0, 1, 5, 5], [2, 2, 8, 9]]),
            "labels": ["cell", "dust"],
            "scores": torch.tensor([0.9, 0.2]),
            "image_size": [10, 10],
        },
        predictions / "img.pt",
    )
    layers = get_reader(str(predictions / "img.pt"))(str(predictions / "img.pt"))
    assert [attributes["name"] for _, attributes, _ in layers] == [
        "predictions: cell",
        "predictions: dust",
    ]
    assert layers[1][1]["features"]["score"] == pytest.approx([0.2])


@pytest.mark.parametrize("opened", ["dataset folder", "annotation file", "prediction file"])
def test_a_phone_photo_opens_upright_with_old_boxes_on_its_object(
    tmp_path: Path, opened: str
) -> None:
    """An orientation-6 photo opens as other tools show it, and files of the previous
    version (boxes on the stored pixels) show their boxes on the same object."""
    folder = tmp_path / "photos"
    photo = write_photo(folder / "photo.jpg", 6)
    save_version_1(folder / "annotations" / "photo.pt", reviewed=True)
    save_version_1(folder / "predictions" / "photo.pt", scores=torch.tensor([0.9, 0.8]))
    path = {
        "dataset folder": folder,
        "annotation file": folder / "annotations" / "photo.pt",
        "prediction file": folder / "predictions" / "photo.pt",
    }[opened]
    (image, _, _), *shapes = get_reader(str(path))(str(path))
    np.testing.assert_array_equal(image, as_other_tools_show(photo))
    boxes = {
        attributes["metadata"]["detlab_class"]: napari_to_xyxy(data)
        for data, attributes, _ in shapes
        if len(data)
    }
    np.testing.assert_array_equal(boxes["head"], [SHOWN[6][1]])
    np.testing.assert_array_equal(boxes["tag"], [SHOWN[6][2]])
    sizes = {tuple(attributes["metadata"]["detlab_image_size"]) for _, attributes, _ in shapes}
    assert sizes == {SHOWN[6][0]}


def test_files_that_are_not_annotations_are_declined(tmp_path: Path) -> None:
    torch.save({"model": torch.zeros(3)}, tmp_path / "checkpoint.pt")
    (tmp_path / "plain").mkdir()
    assert get_reader(str(tmp_path / "checkpoint.pt")) is None
    assert get_reader(str(tmp_path / "plain")) is None  # no annotations/ folder


def test_old_tutorial_targets_open_and_malicious_pickles_are_declined(tmp_path: Path) -> None:
    """A ``.pt`` the store refuses may be the tutorial's numpy-pickled target: it opens
    through ``formats.tutorial``'s allow list, while a pickle that runs code is declined."""
    target = tmp_path / "a.pt"
    torch.save({"labels": np.array(["head"]), "boxes": [np.array([1.0, 2, 11, 12])]}, target)
    ((data, attributes, kind),) = get_reader(str(target))(str(target))
    assert kind == "shapes" and attributes["name"] == "boxes: head"
    np.testing.assert_array_equal(napari_to_xyxy(data), [[1, 2, 11, 12]])
    marker = tmp_path / "executed"
    torch.save({"labels": ["x"], "boxes": _RunsCode(marker)}, tmp_path / "evil.pt")
    assert get_reader(str(tmp_path / "evil.pt")) is None
    assert not marker.exists()


class _RunsCode:
    """Unpickling this would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_saving_shapes_layers_writes_a_store_file(
    make_napari_viewer, dataset: Path, tmp_path: Path
) -> None:
    viewer = make_napari_viewer()
    viewer.open(str(dataset), plugin=PLUGIN)
    layers = _layers_by_name(viewer)
    crystal = layers["boxes: crystal"]
    crystal.add_rectangles(
        np.array([[[40, 60], [40, 80], [60, 80], [60, 60]]])
    )  # reaches past the image
    viewer.layers.selection = {layers["boxes: cell"], crystal}

    target = dataset / "annotations" / "img2.pt"
    written = viewer.layers.save(str(target), selected=True, plugin=PLUGIN)
    assert written == [str(target)]

    annotation = AnnotationStore(dataset).load("img2")  # the store reads it back as is
    assert annotation.reviewed and annotation.image_size == (50, 70)
    assert sorted(annotation.labels) == ["cell", "cell", "crystal", "crystal"]
    clipped = annotation.boxes[annotation.labels.index("crystal") + 1]
    np.testing.assert_allclose(clipped, [60, 40, 70, 50])  # clipped to the 70x50 image
    assert set(safe_torch_load(target)) >= {"boxes", "labels", "reviewed", "version"}


def test_writer_takes_labels_from_features_or_the_layer_name(tmp_path: Path) -> None:
    rectangle = np.array([[0, 0], [0, 4], [3, 4], [3, 0]], float)
    rotated = np.array([[0, 2], [2, 4], [4, 2], [2, 0]], float)  # a diamond: its hull is saved
    tiny = np.array([[1, 1], [1, 1], [1, 1], [1, 1]], float)  # a click: dropped
    layer_data = [
        (
            [rectangle, rotated],
            {"name": "whatever", "features": {"label": ["a", "b"]}, "metadata": {}},
            "shapes",
        ),
        ([rectangle, tiny], {"name": "boxes: nucleus", "metadata": {}}, "shapes"),
    ]
    (path,) = write_shapes_layers(str(tmp_path / "out"), layer_data)
    assert path.endswith("out.pt")
    data = safe_torch_load(path)
    assert data["labels"] == ["a", "b", "nucleus"]
    np.testing.assert_allclose(data["boxes"].numpy(), [[0, 0, 4, 3], [0, 0, 4, 4], [0, 0, 4, 3]])


def test_opening_a_planes_annotation_file_shows_that_plane(make_napari_viewer, tmp_path) -> None:
    from stack_images import block_of, plane_pixels, write_stack

    write_stack(tmp_path / "z.tif", 3)
    AnnotationStore(tmp_path).save("z.plane-0002", ImageAnnotation([block_of(2)], ["cell"], True))
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "annotations" / "z.plane-0002.pt"), plugin=PLUGIN)
    layers = _layers_by_name(viewer)
    np.testing.assert_array_equal(layers["z.plane-0002.tif"].data, plane_pixels(2))
    np.testing.assert_allclose(napari_to_xyxy(layers["boxes: cell"].data), [block_of(2)])
