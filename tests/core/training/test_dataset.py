"""The Annotator folder as training data: who trains, with which labels, split how."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.sample_data import write_synthetic_dataset
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.images import to_float_rgb
from napari_detlab.core.training.dataset import (
    DetectionDataset,
    collate,
    split_by_name,
    split_train_val,
)
from oriented_photos import (
    BRIGHT,
    GREY,
    SHOWN,
    as_other_tools_show,
    mean_inside,
    save_version_1,
    write_photo,
)


def _blank(path, size=(40, 60)):
    Image.fromarray(np.full((*size, 3), 128, np.uint8)).save(path)


@pytest.fixture
def mixed(tmp_path):
    """Boxes, a reviewed negative, an untouched image and a drawn-on-nothing-yet file."""
    store = AnnotationStore(tmp_path)
    store.save_classes([ClassSpec("crystal", "#00ff00"), ClassSpec("cell", "#ff0000")])
    for name in ("boxes", "negative", "untouched", "unreviewed"):
        _blank(tmp_path / f"{name}.png")
    store.save(
        "boxes",
        ImageAnnotation([[1, 2, 11, 22], [30, 5, 50, 35]], ["cell", "crystal"], True, (40, 60)),
    )
    store.save("negative", ImageAnnotation([], [], reviewed=True, image_size=(40, 60)))
    store.save("unreviewed", ImageAnnotation([], [], reviewed=False, image_size=(40, 60)))
    return store


def test_who_trains(mixed):
    assert mixed.trainable_stems() == ["boxes", "negative"]
    dataset = DetectionDataset(mixed.root, None, mixed.class_names())
    assert dataset.stems == ["boxes", "negative"]
    image, target, stem = dataset[1]
    assert stem == "negative" and target["boxes"].shape == (0, 4)
    assert target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
    assert image.shape == (3, 40, 60)


def test_labels_follow_the_class_list_order(mixed):
    assert mixed.class_names() == ["crystal", "cell"]
    dataset = DetectionDataset(mixed, ["boxes"], ["crystal", "cell"])
    image, target, _ = dataset[0]
    assert target["labels"].tolist() == [2, 1]  # cell is the 2nd class, crystal the 1st
    assert target["boxes"].tolist() == [[1, 2, 11, 22], [30, 5, 50, 35]]
    assert image.dtype == torch.float32 and float(image.max()) == pytest.approx(128 / 255)


def test_unknown_class_names_file_and_class(mixed):
    with pytest.raises(ValueError, match=r"boxes\.pt.*'crystal'"):
        DetectionDataset(mixed, ["boxes"], ["cell"])
    with pytest.raises(ValueError, match="no annotation file"):
        DetectionDataset(mixed, ["untouched"], ["cell", "crystal"])


@pytest.mark.parametrize("orientation", [3, 6])
def test_a_phone_photo_trains_as_shown_with_its_old_boxes_on_their_objects(tmp_path, orientation):
    """The model's input is the photo as other tools show it, and an annotation of the
    previous version (stored pixels) reaches it moved onto the same objects."""
    photo = write_photo(tmp_path / "photo.jpg", orientation)
    save_version_1(AnnotationStore(tmp_path).path_for(photo), reviewed=True)
    dataset = DetectionDataset(tmp_path, None, ["head", "tag"])
    image, target, stem = dataset[0]
    shown_size, object_box, corner_box = SHOWN[orientation]
    pixels = image.permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(pixels, to_float_rgb(as_other_tools_show(photo)))
    assert target["boxes"].tolist() == [list(object_box), list(corner_box)]
    assert target["labels"].tolist() == [1, 2]
    assert mean_inside(pixels, object_box) * 255 > BRIGHT - 10
    assert abs(mean_inside(pixels, corner_box) * 255 - GREY) < 10
    assert dataset.ground_truth()[stem].image_size == shown_size


def test_sixteen_bit_grayscale_becomes_three_channels_in_unit_range(tmp_path):
    store = AnnotationStore(tmp_path)
    pixels = np.linspace(1000, 5000, 30 * 20).reshape(30, 20).astype(np.uint16)
    tifffile.imwrite(tmp_path / "scan.tif", pixels)
    store.save("scan", ImageAnnotation([[2, 2, 10, 10]], ["cell"], True, (30, 20)))
    image, _, _ = DetectionDataset(tmp_path, None, ["cell"])[0]
    assert image.shape == (3, 30, 20)
    assert float(image.min()) == 0.0 and float(image.max()) == 1.0


def test_split_is_seeded_disjoint_and_holds_out_at_least_one(tmp_path):
    write_synthetic_dataset(tmp_path, 20, size=(32, 32), max_objects=1)
    store = AnnotationStore(tmp_path)
    train, val = split_train_val(store, 0.2, seed=3)
    assert (train, val) == split_train_val(store, 0.2, seed=3)
    assert val and not set(train) & set(val) and len(train) + len(val) == 20
    assert split_train_val(store, 0.2, seed=4)[1] != val  # the seed salts the names' hashes
    assert split_train_val(store, 0.0)[1] == []

    small = tmp_path / "small"
    write_synthetic_dataset(small, 2, size=(32, 32), max_objects=1)
    train, val = split_train_val(small, 0.01)
    assert len(train) == 1 and len(val) == 1
    single = tmp_path / "single"
    write_synthetic_dataset(single, 1, size=(32, 32), max_objects=1)
    assert split_train_val(single) == (["img_0000"], [])


def test_adding_images_never_moves_an_earlier_one(tmp_path):
    """The old seeded shuffle moved 3 of 8 validation images into training when a 41st image
    came; a hash of each name keeps every image on its side however the folder grows."""
    names = [f"img_{i:04d}" for i in range(60)]
    for seed in (0, 1):
        sides = {}
        for count in (40, 41, 60):
            train, val = split_by_name(dict.fromkeys(names[:count], ()), 0.2, seed)
            now = {**dict.fromkeys(train, "train"), **dict.fromkeys(val, "val")}
            assert all(now[name] == side for name, side in sides.items()), (seed, count)
            sides = now
        assert 0 < len(val) < 60

    # The same through a folder: four more images annotated, the first twelve stay put.
    write_synthetic_dataset(tmp_path, 12, size=(32, 32), max_objects=1)
    train, val = split_train_val(tmp_path, 0.25)
    write_synthetic_dataset(tmp_path, 16, size=(32, 32), max_objects=1)
    grown_train, grown_val = split_train_val(tmp_path, 0.25)
    assert set(train) <= set(grown_train) and set(val) <= set(grown_val)
    assert len(grown_train) + len(grown_val) == 16


def test_the_validation_share_is_about_the_fraction_on_many_images():
    names = dict.fromkeys((f"photo {i}.jpg" for i in range(1000)), ())
    for fraction in (0.1, 0.2, 0.5):
        for seed in (0, 7):
            _train, val = split_by_name(names, fraction, seed)
            assert abs(len(val) / 1000 - fraction) < 0.03, (fraction, seed, len(val))


def test_tiny_folders_hold_out_one_image_and_train_one_whatever_the_hash():
    for seed in range(20):
        assert [len(side) for side in split_by_name({"a": (), "b": ()}, 0.2, seed)] == [1, 1]
        assert [len(side) for side in split_by_name({"a": (), "b": ()}, 0.9, seed)] == [1, 1]
        three = split_by_name(dict.fromkeys("abc", ()), 0.05, seed)
        assert [len(side) for side in three] == [2, 1]


def test_a_stratified_split_validates_and_trains_every_class_with_two_images():
    labels: dict[str, list[str]] = {f"common_{i}": ["cell"] for i in range(60)}
    for name, count in (("spore", 2), ("crystal", 3), ("hypha", 4), ("cyst", 2), ("egg", 2)):
        labels.update({f"{name}_{i}": [name, "cell"] for i in range(count)})
    labels["lonely_0"] = ["amoeba"]  # one image: it must train, it cannot also validate
    images_of = {
        name: {stem for stem, names in labels.items() if name in names}
        for name in ("spore", "crystal", "hypha", "cyst", "egg", "cell", "amoeba")
    }

    _train, plain_val = split_by_name(labels, 0.2, seed=0)
    unscored = [n for n, stems in images_of.items() if len(stems) > 1 and not stems & {*plain_val}]
    untrained = [n for n, stems in images_of.items() if stems <= {*plain_val}]
    # Without stratifying, rare classes go unscored (and both cyst images only validate).
    assert {"spore", "crystal", "hypha", "egg"} <= set(unscored) and untrained == ["cyst"]

    train, val = split_by_name(labels, 0.2, seed=0, stratify=True)
    for name, stems in images_of.items():
        if len(stems) >= 2:
            assert stems & set(val) and stems & set(train), name
    assert "lonely_0" in train
    # One image moved per class that needed it; the rest kept their hash's side.
    assert len(set(val) ^ set(plain_val)) == len(unscored) + len(untrained)


def test_split_fixed_by_a_file(tmp_path):
    write_synthetic_dataset(tmp_path, 5, size=(32, 32), max_objects=1)
    listing = tmp_path / "val.txt"
    listing.write_text("# held out\nimg_0001.png\n\nimg_0003\n")
    assert split_train_val(tmp_path, split_file=listing) == (
        ["img_0000", "img_0002", "img_0004"],
        ["img_0001", "img_0003"],
    )
    # The file wins over the fraction, the seed and stratifying.
    assert split_train_val(
        tmp_path, 0.5, seed=9, split_file=listing, stratify=True
    ) == split_train_val(tmp_path, split_file=listing)
    as_list = tmp_path / "val.json"
    as_list.write_text(json.dumps(["img_0004"]))
    assert split_train_val(tmp_path, split_file=as_list)[1] == ["img_0004"]
    as_dict = tmp_path / "split.json"
    as_dict.write_text(json.dumps({"train": ["img_0000", "img_0001"], "val": ["img_0002"]}))
    assert split_train_val(tmp_path, split_file=as_dict) == (["img_0000", "img_0001"], ["img_0002"])
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"val": ["img_9999"]}))
    with pytest.raises(ValueError, match="img_9999"):
        split_train_val(tmp_path, split_file=typo)
    both = tmp_path / "both.json"
    both.write_text(json.dumps({"train": ["img_0000"], "val": ["img_0000"]}))
    with pytest.raises(ValueError, match="both train and val"):
        split_train_val(tmp_path, split_file=both)


def test_collate_keeps_lists_and_a_loader_batches(tmp_path):
    write_synthetic_dataset(tmp_path, 3, size=(48, 64), negatives=1)
    dataset = DetectionDataset(tmp_path, None, ["cell", "crystal"], augment=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, collate_fn=collate)
    images, targets, stems = next(iter(loader))
    assert len(images) == len(targets) == 2 and stems == ["img_0000", "img_0001"]
    assert images[0].shape == (3, 48, 64)
    assert collate([]) == ([], [], [])


def test_images_sharing_a_stem_are_refused(mixed):
    _blank(mixed.root / "boxes.jpg")
    mixed.refresh()
    with pytest.raises(ValueError, match=r"boxes\.\w+, boxes\.\w+ share one"):
        DetectionDataset(mixed, ["boxes"], ["cell", "crystal"])
