"""AnchorTuning, the AnchorViewer's model, driven without a viewer."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from anchor_scene import EXACT, LINE
from napari_detlab.core.anchors.dataset_boxes import DatasetBoxes
from napari_detlab.core.anchors.report import anchor_report
from napari_detlab.core.anchors.suggest import suggest_anchors
from napari_detlab.core.anchors.tuning import AnchorFields, AnchorTuning
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import DEFAULT_CLASS, AnnotationStore, ClassSpec
from napari_detlab.core.images import ImageReadError
from napari_detlab.core.model.config import ConfigError, ModelConfig, preset


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    store = AnnotationStore(tmp_path)
    for i in range(2):
        iio.imwrite(tmp_path / f"img{i}.png", np.zeros((256, 256, 3), np.uint8))
        annotation = ImageAnnotation(np.array([EXACT, LINE]), ["cell", "debris"], True, (256, 256))
        store.save(tmp_path / f"img{i}.png", annotation)
    store.save_classes([ClassSpec("cell", "#ff0000"), ClassSpec("debris", "#00ff00")])
    return store


def test_fields_show_a_config_and_give_it_back():
    config = preset("accurate", ["a"])
    fields = AnchorFields.of(config)
    assert fields == AnchorFields("resnet50", True, "32; 64; 128; 256; 512", "0.5, 1, 2", 800, 1333)
    assert fields.apply_to(config).to_dict() == config.to_dict()


def test_ratios_given_once_repeat_on_each_level_of_the_new_backbone():
    tuning = AnchorTuning()
    tuning.load_config(preset("fast", ["a"]))
    fields = AnchorFields("mobilenet_v3_large", True, "32; 64; 128", "0.5, 2", 320, 640)
    config = tuning.read_fields(fields)
    assert config.num_levels == 3 and config.aspect_ratios == [[0.5, 2.0]] * 3
    assert tuning.config is config and (config.min_size, config.max_size) == (320, 640)


def test_a_coco_config_on_a_backbone_without_coco_weights_falls_back_to_imagenet():
    tuning = AnchorTuning()
    tuning.load_config(ModelConfig(classes=["a"], backbone="resnet50", pretrained="coco"))
    fields = AnchorFields("resnet18", True, "16; 32; 64; 128; 256", "1", 512, 853)
    assert tuning.read_fields(fields).pretrained == "imagenet"
    fields = AnchorFields("resnet50", True, "16; 32; 64; 128; 256", "1", 512, 853)
    assert tuning.read_fields(fields).pretrained == "coco"  # kept where it exists


def test_bad_fields_raise_and_keep_the_last_valid_config():
    tuning = AnchorTuning()
    good = tuning.read_fields(AnchorFields.of(preset("fast", ["a"])))
    for sizes in ("16; 32", "16; x", ""):
        with pytest.raises(ConfigError):
            tuning.read_fields(AnchorFields("resnet18", True, sizes, "1", 256, 512))
        assert tuning.config is good


def test_classes_come_from_the_store_or_default_to_one(store):
    without = ModelConfig(classes=[])
    fields = AnchorFields.of(without)
    tuning = AnchorTuning()
    tuning.load_config(without)
    assert tuning.read_fields(fields).classes == [DEFAULT_CLASS]
    assert tuning.default_config().classes == [DEFAULT_CLASS]
    tuning.set_store(store)
    assert tuning.read_fields(fields).classes == ["cell", "debris"]
    default = tuning.default_config()
    assert default.to_dict() == preset("fast", ["cell", "debris"]).to_dict()
    store.classes_path.write_text("{broken")  # an unreadable class list: still a config
    assert tuning.read_fields(fields).classes == [DEFAULT_CLASS]


def test_image_dataset_and_report_follow_the_files(store):
    tuning = AnchorTuning(store)
    tuning.read_fields(AnchorFields.of(preset("fast", ["cell", "debris"])))
    image = store.root / "img0.png"
    assert tuning.image_coverage() is None  # no image yet
    tuning.set_image(image)
    assert tuning.shows(image) and tuning.shows("img0") and not tuning.shows("img1.png")
    assert tuning.image_size == (256, 256)
    assert tuning.image_coverage().best_iou[0] == 1.0  # EXACT is an anchor
    assert tuning.place_anchors((256, 256)).num_levels == 5 and tuning.layout is not None

    dataset = DatasetBoxes.load(store)
    assert not AnchorTuning(store).accept_dataset(DatasetBoxes.load(AnnotationStore(store.root)))
    assert tuning.accept_dataset(dataset) and tuning.dataset is dataset
    store.save(image, ImageAnnotation(np.array([EXACT]), ["cell"], True, (256, 256)))
    tuning.set_image(image)  # the Annotator saved the image on screen: re-read it ...
    tuning.update_dataset(image)  # ... and the dataset takes that very record
    assert tuning.dataset.items[0] is tuning.image and len(tuning.dataset.items[0].boxes) == 1
    tuning.report = anchor_report(tuning.config, tuning.dataset.items)
    assert tuning.report.figures.boxes == 3

    tuning.set_store(None)  # another dataset: nothing of the old one stays
    assert tuning.dataset is None and tuning.report is None
    tuning.update_dataset(image)  # without a dataset: nothing to update, no error


def test_a_failed_image_read_keeps_the_previous_image(store):
    tuning = AnchorTuning(store)
    tuning.set_image(store.root / "img0.png")
    (store.root / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="cannot be read"):
        tuning.set_image(store.root / "broken.png")
    assert tuning.image_path == store.root / "broken.png"
    assert tuning.image.image == store.root / "img0.png"


def test_suggestion_then_revert(store):
    tuning = AnchorTuning(store)
    before = tuning.read_fields(tuning.load_config(preset("fast", ["cell", "debris"])))
    assert tuning.revert() is None  # nothing to revert to yet
    suggestion = suggest_anchors(before, DatasetBoxes.load(store).items, refine=False)
    fields = tuning.accept_suggestion(suggestion)
    assert tuning.suggestion is suggestion and tuning.before_suggestion is before
    assert tuning.read_fields(fields).anchor_sizes == suggestion.config.anchor_sizes
    assert tuning.revert() == AnchorFields.of(before)
    assert tuning.before_suggestion is None and tuning.base_config is before
