"""Augmentation moves the boxes with the pixels and never emits a box that crashes training."""

from __future__ import annotations

import pytest
import torch

from napari_detlab.core.training.augment import Augmenter, clean_boxes, hflip, scale_jitter, vflip

H, W = 90, 120


def _picture(boxes: list[list[int]]) -> torch.Tensor:
    """Black image with each box painted white: the boxes can be read back from the pixels."""
    image = torch.zeros(3, H, W)
    for x1, y1, x2, y2 in boxes:
        image[:, y1:y2, x1:x2] = 1.0
    return image


def _extent(image: torch.Tensor, box: torch.Tensor) -> list[float]:
    """Extent of the bright pixels inside (a margin around) one box."""
    x1, y1, x2, y2 = (int(v) for v in box.round())
    window = image[0, max(0, y1 - 3) : y2 + 3, max(0, x1 - 3) : x2 + 3] > 0.5
    rows = torch.nonzero(window.any(dim=1)).flatten()
    cols = torch.nonzero(window.any(dim=0)).flatten()
    return [
        max(0, x1 - 3) + int(cols[0]),
        max(0, y1 - 3) + int(rows[0]),
        max(0, x1 - 3) + int(cols[-1]) + 1,
        max(0, y1 - 3) + int(rows[-1]) + 1,
    ]


def test_flips_mirror_boxes_with_pixels():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 50.0]])
    image = _picture([[10, 20, 30, 50]])
    flipped, fboxes = hflip(image, boxes)
    assert fboxes.tolist() == [[90.0, 20.0, 110.0, 50.0]]
    assert _extent(flipped, fboxes[0]) == fboxes[0].tolist()
    flipped, fboxes = vflip(image, boxes)
    assert fboxes.tolist() == [[10.0, 40.0, 30.0, 70.0]]
    assert _extent(flipped, fboxes[0]) == fboxes[0].tolist()


@pytest.mark.parametrize("scale", [0.6, 1.0, 1.5])
def test_scale_jitter_keeps_canvas_and_tracks_objects(scale):
    boxes = torch.tensor([[40.0, 30.0, 70.0, 60.0]])
    image = _picture([[40, 30, 70, 60]])
    out, moved = scale_jitter(image, boxes, scale, (0.5, 0.5))
    assert out.shape == image.shape
    assert moved[0, 2] - moved[0, 0] == pytest.approx(30 * scale, abs=0.6)
    assert _extent(out, moved[0]) == pytest.approx(moved[0].tolist(), abs=1.01)


@pytest.mark.parametrize("seed", range(25))
def test_random_augment_boxes_match_the_painted_objects(seed):
    painted = [[5, 5, 25, 30], [60, 40, 100, 80], [100, 0, 120, 15]]
    augment = Augmenter(scale_p=1.0, hflip_p=0.5, vflip_p=0.5, brightness=0, contrast=0, seed=seed)
    image, boxes, labels = augment(
        _picture(painted), torch.tensor(painted).float(), torch.tensor([1, 2, 3])
    )
    assert image.shape == (3, H, W)
    assert len(boxes) == len(labels)
    assert ((boxes[:, 2] - boxes[:, 0]) >= 1).all() and ((boxes[:, 3] - boxes[:, 1]) >= 1).all()
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= W).all() and (boxes[:, 3] <= H).all()
    for box in boxes:
        assert _extent(image, box) == pytest.approx(box.tolist(), abs=1.51)


def test_seeded_augmenters_repeat_and_differ():
    image, boxes, labels = (
        _picture([[10, 10, 40, 40]]),
        torch.tensor([[10.0, 10, 40, 40]]),
        torch.tensor([1]),
    )
    first = [Augmenter(seed=7)(image, boxes, labels)[1] for _ in range(2)]
    assert torch.equal(first[0], first[1])
    outcomes = {
        tuple(Augmenter(seed=s)(image, boxes, labels)[1].flatten().tolist()) for s in range(10)
    }
    assert len(outcomes) > 3


def test_degenerate_and_cut_away_boxes_are_dropped():
    boxes = torch.tensor(
        [[-5.0, 2, 0.5, 10], [3, 3, 3.5, 20], [110, 80, 130, 100], [-10, -10, 200, 200]]
    )
    kept, labels = clean_boxes(boxes, torch.tensor([1, 2, 3, 4]), W, H)
    assert labels.tolist() == [3, 4]
    assert kept.tolist() == [[110, 80, 120, 90], [0, 0, W, H]]
    area = torch.tensor([400.0])
    kept, _ = clean_boxes(
        torch.tensor([[0.0, 0, 2, 20]]),
        torch.tensor([1]),
        W,
        H,
        original_area=area,
        min_visible=0.25,
    )
    assert len(kept) == 0  # 40 of 400 pixels left: a sliver, not an object
    no_boxes = torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)
    _, boxes, labels = Augmenter(scale_p=1.0, seed=0)(_picture([]), *no_boxes)
    assert boxes.shape == (0, 4) and labels.shape == (0,)


def test_photometric_changes_stay_in_unit_range():
    image = torch.rand(3, H, W)
    out, _, _ = Augmenter(hflip_p=0, scale_p=0, brightness=0.5, contrast=0.5, seed=1)(
        image, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)
    )
    assert float(out.min()) >= 0 and float(out.max()) <= 1 and not torch.equal(out, image)


def test_seeded_augmenter_differs_between_dataloader_workers(monkeypatch):
    import types

    image, boxes, labels = (
        _picture([[10, 10, 40, 40]]),
        torch.tensor([[10.0, 10, 40, 40]]),
        torch.tensor([1]),
    )

    def run_in_worker(worker_seed):
        info = types.SimpleNamespace(id=0, seed=worker_seed)
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: info)
        augment = Augmenter(seed=7)  # each worker holds its own copy of the same object
        return [tuple(augment(image, boxes, labels)[1].flatten().tolist()) for _ in range(6)]

    assert run_in_worker(100) == run_in_worker(100)  # reproducible for the same worker seed
    assert run_in_worker(100) != run_in_worker(101)  # but workers do not repeat each other
