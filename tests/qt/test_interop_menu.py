"""The Annotator's Import / export menu, driven through its actions in a real viewer."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_detlab._qt.annotator import AnnotatorWidget
from napari_detlab._qt.interop_menu import build_interop_menu
from napari_detlab.core.annotations.store import AnnotationStore, ImageAnnotation


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ds"
    folder.mkdir()
    for index in range(2):
        iio.imwrite(folder / f"img{index}.png", np.full((20, 30, 3), 50 * index, np.uint8))
    return folder


def _coco(path: Path, boxes: list[list[float]], name: str = "nucleus") -> Path:
    path.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "img0.png", "width": 30, "height": 20}],
                "annotations": [
                    {
                        "id": i + 1,
                        "image_id": 1,
                        "category_id": 1,
                        "bbox": box,
                        "area": 1,
                        "iscrowd": 0,
                    }
                    for i, box in enumerate(boxes)
                ],
                "categories": [{"id": 1, "name": name}],
            }
        )
    )
    return path


def _action(menu_button, text: str):
    return next(a for a in menu_button.menu().actions() if a.text().startswith(text))


def test_import_from_the_menu_shows_the_boxes_and_the_new_class(
    make_napari_viewer, folder: Path, tmp_path: Path
) -> None:
    viewer = make_napari_viewer()
    annotator = AnnotatorWidget(viewer)
    annotator.open_folder(folder)
    source = _coco(tmp_path / "labels.json", [[1, 2, 10, 8], [5, 5, 3, 3]])
    asked: list[str] = []
    button = build_interop_menu(
        annotator, ask_path=lambda kind, *_: asked.append(kind) or str(source)
    )

    _action(button, "Import COCO").trigger()

    assert asked == ["open_file"]
    assert AnnotationStore(folder).load("img0").labels == ["nucleus", "nucleus"]
    assert "nucleus" in {c.name for c in annotator.classes}
    layer = viewer.layers["boxes: nucleus"]
    assert annotator.index == 0 and layer.nshapes == 2


def test_import_asks_before_replacing_different_boxes(
    make_napari_viewer, folder: Path, tmp_path: Path
) -> None:
    viewer = make_napari_viewer()
    annotator = AnnotatorWidget(viewer)
    annotator.open_folder(folder)
    AnnotationStore(folder).save("img0", ImageAnnotation([[0, 0, 4, 4]], ["mine"], True, (20, 30)))
    annotator.reload_current()
    source = _coco(tmp_path / "labels.json", [[1, 2, 10, 8]], name="mine")
    answers = iter([False, True])
    questions: list[str] = []

    def confirm(question: str) -> bool:
        questions.append(question)
        return next(answers)

    button = build_interop_menu(annotator, ask_path=lambda *_: str(source), confirm=confirm)
    _action(button, "Import COCO").trigger()
    assert AnnotationStore(folder).load("img0").boxes.tolist() == [[0, 0, 4, 4]]  # said no
    _action(button, "Import COCO").trigger()
    assert AnnotationStore(folder).load("img0").boxes.tolist() == [[1, 2, 11, 10]]  # said yes
    assert len(questions) == 2 and "img0.png" in questions[0]
    np.testing.assert_allclose(viewer.layers["boxes: mine"].data[0].max(axis=0), [10, 11])


def test_export_from_the_menu_writes_the_format(
    make_napari_viewer, folder: Path, tmp_path: Path
) -> None:
    viewer = make_napari_viewer()
    annotator = AnnotatorWidget(viewer)
    annotator.open_folder(folder)
    AnnotationStore(folder).save("img1", ImageAnnotation([[3, 3, 9, 9]], ["cell"], True, (20, 30)))
    target = tmp_path / "voc"
    button = build_interop_menu(
        annotator, ask_path=lambda kind, *_: str(target) if kind == "folder" else None
    )
    _action(button, "Export Pascal VOC").trigger()
    assert (target / "img1.xml").is_file()
    assert "<xmin>4</xmin>" in (target / "img1.xml").read_text()


def test_menu_without_a_dataset_or_a_chosen_path_does_nothing(folder: Path, qtbot) -> None:
    class Stub:
        store = None
        reloads = 0

        def flush(self) -> bool:
            return True

        def reload_current(self) -> None:
            self.reloads += 1

    stub = Stub()
    button = build_interop_menu(stub, ask_path=lambda *_: pytest.fail("asked for a path"))
    qtbot.addWidget(button)
    for action in button.menu().actions():
        action.trigger()  # a warning, no dialog, no crash
    stub.store = AnnotationStore(folder)
    button = build_interop_menu(stub, ask_path=lambda *_: None)  # the user cancels
    qtbot.addWidget(button)
    for action in button.menu().actions():
        action.trigger()
    assert stub.reloads == 0 and not (folder / "annotations").exists()


def test_the_annotator_dock_carries_the_menu_for_every_format(make_napari_viewer) -> None:
    annotator = AnnotatorWidget(make_napari_viewer())
    texts = [action.text() for action in annotator.interop_button.menu().actions()]
    for title in ("COCO", "VOC", "YOLO"):
        assert any(t.startswith("Import") and title in t for t in texts), texts
        assert any(t.startswith("Export") and title in t for t in texts), texts
