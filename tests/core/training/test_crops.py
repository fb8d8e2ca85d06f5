"""Training on crops of large images: where crops fall, which boxes they keep, the items."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from bright_squares import square_boxes, squares_image
from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from napari_detlab.core.training.crops import CropSampler, crop_around, crop_window
from napari_detlab.core.training.dataset import DetectionDataset
from napari_detlab.core.training.options import TrainingInputError, TrainOptions

DRAWS = [0.0, 0.3, 0.999]


def test_a_crop_around_a_box_holds_it_whole_and_stays_in_the_image():
    height, width, size = 500, 700, 96
    boxes = torch.tensor(
        [[0, 0, 20, 20], [680, 480, 700, 500], [300, 200, 330, 224]], dtype=torch.float32
    )
    for which, u, v in itertools.product(range(3), DRAWS, DRAWS):
        x0, y0 = crop_window(boxes, height, width, size, (0.9, (which + 0.5) / 3, u, v))
        assert 0 <= x0 <= width - size and 0 <= y0 <= height - size
        bx0, by0, bx1, by1 = boxes[which].tolist()
        assert x0 <= bx0 and bx1 <= x0 + size and y0 <= by0 and by1 <= y0 + size


def test_a_negative_crop_may_fall_anywhere_and_an_image_without_boxes_gets_one():
    empty = torch.zeros((0, 4))
    assert crop_window(empty, 500, 700, 96, (0.9, 0.0, 0.0, 0.0)) == (0, 0)
    assert crop_window(empty, 500, 700, 96, (0.9, 0.0, 1.0, 1.0)) == (700 - 96, 500 - 96)
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0]])
    assert crop_window(boxes, 500, 700, 96, (0.1, 0.0, 1.0, 1.0), negative_p=0.2) == (604, 404)


def test_a_box_larger_than_the_crop_gets_a_crop_centred_on_it():
    boxes = torch.tensor([[100.0, 100.0, 300.0, 150.0]])
    x0, y0 = crop_window(boxes, 500, 700, 96, (0.9, 0.0, 0.5, 0.5))
    assert x0 == 200 - 48 and y0 <= 100 and y0 + 96 >= 150


def test_the_crop_holds_the_pixels_its_boxes_point_at():
    truth = square_boxes(400, 600, 12, 30, seed=1)
    pixels = torch.from_numpy(squares_image(400, 600, truth)).permute(2, 0, 1).float() / 255
    labels = torch.arange(1, len(truth) + 1)
    image, boxes, kept = crop_around(pixels, torch.from_numpy(truth), labels, 250, 130, 96)
    assert image.shape == (3, 96, 96) and len(boxes) > 0
    for box, label in zip(boxes.tolist(), kept.tolist(), strict=True):
        x0, y0, x1, y1 = (round(v) for v in box)
        assert image[:, y0:y1, x0:x1].min() == 1.0  # the square is where the box says
        original = truth[label - 1]
        assert np.allclose(np.clip(original - [250, 130, 250, 130], 0, 96), box)
    # no bright pixel is left without a box: every square inside is kept or cut to a sliver
    outside = torch.ones(96, 96, dtype=torch.bool)
    for x0, y0, x1, y1 in truth - np.asarray([250, 130, 250, 130]):
        outside[max(int(y0), 0) : max(int(y1), 0), max(int(x0), 0) : max(int(x1), 0)] = False
    assert image[:, outside].max() == 0.0


def test_boxes_mostly_cut_away_are_dropped_and_half_visible_ones_kept():
    image = torch.zeros(3, 200, 200)
    boxes = torch.tensor([[90.0, 10.0, 110.0, 30.0], [85.0, 50.0, 105.0, 70.0]])
    # crop x 0..100: the first box keeps 10 / 20 of its width, the second 15 / 20
    _, kept, labels = crop_around(image, boxes, torch.tensor([1, 2]), 0, 0, 100, min_visible=0.6)
    assert labels.tolist() == [2] and kept.tolist() == [[85.0, 50.0, 100.0, 70.0]]
    _, kept, labels = crop_around(image, boxes, torch.tensor([1, 2]), 0, 0, 100, min_visible=0.5)
    assert labels.tolist() == [1, 2]


def test_an_image_smaller_than_the_crop_is_padded_not_enlarged():
    image = torch.ones(3, 50, 80)
    piece, boxes, _ = crop_around(
        image, torch.tensor([[10.0, 10.0, 20.0, 20.0]]), torch.tensor([1]), 0, 0, 96
    )
    assert (
        piece.shape == (3, 96, 96) and piece[:, 50:, :].max() == 0 and piece[:, :50, :80].min() == 1
    )
    assert boxes.tolist() == [[10.0, 10.0, 20.0, 20.0]]


def test_the_auto_rule_crops_a_slide_and_not_a_photo():
    sampler = CropSampler(256, 256, 512)
    assert sampler.applies(4000, 6000) and not sampler.applies(480, 640)
    assert sampler.repeats(4000, 6000) == 16 and sampler.repeats(480, 640) == 1
    assert not CropSampler(256, 256, 512, mode="off").applies(4000, 6000)
    assert CropSampler(256, 256, 512, mode="on").applies(480, 640)
    with pytest.raises(TrainingInputError, match="crops must be one of"):
        CropSampler(256, 256, 512, mode="yes")
    with pytest.raises(TrainingInputError, match="crops must be"):
        TrainOptions(crops="always").validate()
    with pytest.raises(TrainingInputError, match="crop_size must be at least 16"):
        TrainOptions(crop_size=8).validate()
    options = TrainOptions.from_dict({"crops": "on", "crop_size": 64}).validate()
    assert (options.crops, options.crop_size) == ("on", 64)


@pytest.fixture
def slide_folder(tmp_path):
    """One 600 x 800 slide of 10-px squares and one small 60 x 80 image."""
    store = AnnotationStore(tmp_path)
    store.save_classes([ClassSpec("square", "#ffffff")])
    truth = square_boxes(600, 800, 10, 50, seed=2)
    Image.fromarray(squares_image(600, 800, truth)).save(tmp_path / "slide.png")
    store.save("slide", ImageAnnotation(truth, ["square"] * len(truth), True, (600, 800)))
    small = np.asarray([[5, 5, 25, 25]], np.float32)
    Image.fromarray(squares_image(60, 80, small)).save(tmp_path / "small.png")
    store.save("small", ImageAnnotation(small, ["square"], True, (60, 80)))
    return store


def test_the_dataset_serves_a_large_image_as_crops_with_their_boxes(slide_folder):
    torch.manual_seed(0)
    sampler = CropSampler(64, 64, 96)  # 600 x 800 would shrink to 0.11: crops
    dataset = DetectionDataset(slide_folder, ["slide", "small"], ["square"], crops=sampler)
    assert len(dataset) == 16 + 1  # the slide stands for 16 crops, the small image for itself
    with_boxes = 0
    for item in range(len(dataset)):
        image, target, stem = dataset[item]
        if stem == "small":
            assert image.shape == (3, 60, 80) and target["boxes"].tolist() == [[5, 5, 25, 25]]
            continue
        assert image.shape == (3, 64, 64)
        for x0, y0, x1, y1 in target["boxes"].round().int().tolist():
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            assert image[:, y0:y1, x0:x1].min() == 1.0
        with_boxes += len(target["boxes"]) > 0
    assert with_boxes >= 8  # most crops fall around a box
    plain = DetectionDataset(slide_folder, ["slide", "small"], ["square"])
    assert len(plain) == 2 and plain[0][0].shape == (3, 600, 800)
