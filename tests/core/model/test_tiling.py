"""Tiled prediction: the grid, merging boxes across tiles, and small objects found at full size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bright_squares import SquareFinder, square_boxes, squares_image
from napari_detlab.core.boxes import box_iou
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.predict import predict_images
from napari_detlab.core.model.tiling import (
    TileDetections,
    Tiling,
    TilingError,
    merge_tiles,
    needs_tiles,
    tile_grid,
    tile_starts,
)


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap"),
    [(1000, 1500, 256, 64), (4000, 6000, 512, 128), (300, 257, 256, 0), (100, 90, 256, 64)],
)
def test_the_grid_covers_the_image_with_the_stated_overlap(height, width, tile, overlap):
    grid = tile_grid(height, width, tile, overlap)
    covered = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in grid:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert (x1 - x0, y1 - y0) == (min(tile, width), min(tile, height))  # all full tiles
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    for length in (height, width):
        starts = tile_starts(length, tile, overlap)
        ends = [start + min(tile, length) for start in starts]
        assert all(end - nxt >= overlap for end, nxt in zip(ends, starts[1:], strict=False))
        # the fewest tiles: one fewer could not cover the axis with that overlap
        fewer = len(starts) - 1
        assert fewer == 0 or (fewer - 1) * (tile - overlap) + tile < length


def test_the_auto_rule_tiles_a_slide_and_not_a_photo():
    fast, accurate = preset("fast", ["cell"]), preset("accurate", ["cell"])
    for config in (fast, accurate):
        assert Tiling("auto").applies(4000, 6000, config.min_size, config.max_size)
        assert not Tiling("auto").applies(480, 640, config.min_size, config.max_size)
        assert not Tiling("off").applies(4000, 6000, config.min_size, config.max_size)
        assert Tiling("on").applies(480, 640, config.min_size, config.max_size)
    # the boundary: shrinking exactly 4x a side is not tiled, a pixel more is
    assert not needs_tiles(1024, 2048, 256, 512) and needs_tiles(1024, 2052, 256, 512)


def test_settings_no_run_can_use_are_refused_naming_them():
    with pytest.raises(TilingError, match="overlap"):
        Tiling("on", tile_size=64, overlap=64).validate()
    with pytest.raises(TilingError, match="tiling must be one of"):
        Tiling.of("sometimes")


def _found(tile, boxes, labels=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    labels = torch.ones(len(boxes), dtype=torch.int64) if labels is None else torch.tensor(labels)
    return TileDetections(tile, boxes, torch.full((len(boxes),), 0.8), labels)


# A left tile (0, 0, 100, 100) and a right one of 100 px from x = start, on an image 100 px
# high that ends with the right tile: (start, overlap, the left tile's box, the right tile's
# box, each in the tile's own pixels, and the one box expected in the image).
PAIRS = {
    # x 70..85 lies in both tiles, whole in each: NMS keeps one
    "seen whole by two tiles": (60, 40, [70, 40, 85, 55], [10, 40, 25, 55], [70, 40, 85, 55]),
    # x 90..105: the left tile sees 90..100, cut by its inner right edge; the right one sees
    # it whole. The piece is dropped, not kept beside the whole box.
    "small, cut by a tile edge": (60, 40, [90, 40, 100, 55], [30, 40, 45, 55], [90, 40, 105, 55]),
    # x 50..140 is wider than the overlap and neither tile sees it whole: the pieces join.
    "larger than the overlap": (80, 20, [50, 20, 100, 60], [0, 21, 60, 60], [50, 20, 140, 60]),
    # x 30..97.5 is whole in the left tile (2.5 px from its edge); the right tile sees 17.5 px
    # of it, more than the overlap less the margins and far from an IoU of 0.5 with the whole
    # box, so NMS alone would keep both: the piece inside a whole box is dropped.
    "a piece of a whole box": (80, 20, [30, 20, 97.5, 60], [0, 20, 17.5, 60], [30, 20, 97.5, 60]),
}


@pytest.mark.parametrize("case", PAIRS.values(), ids=PAIRS.keys())
def test_an_object_seen_by_two_tiles_is_one_box(case):
    start, overlap, left_box, right_box, expected = case
    left, right = (0, 0, 100, 100), (start, 0, start + 100, 100)
    boxes, _, labels = merge_tiles(
        [_found(left, [left_box]), _found(right, [right_box])], 100, start + 100, overlap, 0.5
    )
    assert boxes.tolist() == [expected] and labels.tolist() == [1]


def test_two_classes_on_one_spot_are_both_kept():
    left, right = (0, 0, 100, 100), (60, 0, 160, 100)
    _, _, labels = merge_tiles(
        [_found(left, [[70, 40, 85, 55]], [1]), _found(right, [[10, 40, 25, 55]], [2])],
        100, 160, 40, 0.5,
    )  # fmt: skip
    assert sorted(labels.tolist()) == [1, 2]


def test_a_box_at_the_image_border_is_not_taken_for_a_cut_one():
    only = (0, 0, 100, 100)
    boxes, _, _ = merge_tiles(
        [_found(only, [[0, 0, 10, 10], [92, 92, 100, 100]])], 100, 100, 40, 0.5
    )
    assert len(boxes) == 2


@pytest.fixture
def slide(tmp_path):
    """768 x 512 black image with 40 white squares of 10 px."""
    boxes = square_boxes(512, 768, 10, 40, seed=3)
    path = tmp_path / "slide.png"
    Image.fromarray(squares_image(512, 768, boxes)).save(path)
    return path, boxes


def test_tiles_find_small_objects_that_resizing_the_whole_image_loses(slide):
    path, truth = slide
    config = preset("fast", ["square"]).replace(min_size=64, max_size=96)
    model = SquareFinder(config.min_size, config.max_size, min_side=6)
    tiling = Tiling("auto")
    # the known answer is not vacuous: some squares straddle an inner tile edge
    grid = tile_grid(512, 768, 64, Tiling().overlap_for(64))
    inner_x = {x for x0, _, x1, _ in grid for x in (x0, x1) if 0 < x < 768}
    assert any(x0 < x < x1 for x0, _, x1, _ in truth.tolist() for x in inner_x)

    ((_, tiled),) = predict_images(model, config, [path], tiling=tiling)
    ((_, whole),) = predict_images(model, config, [path], tiling="off")

    assert len(whole.boxes) == 0  # 10 px squares are about 1 px after the 8x shrink
    assert len(tiled.boxes) == len(truth)  # every square once: none lost, none doubled
    overlaps = box_iou(tiled.boxes, truth)
    assert (overlaps.max(axis=1) > 0.99).all() and len(set(overlaps.argmax(axis=1))) == len(truth)
    assert tiled.image_size == (512, 768) and tiled.labels == ["square"] * len(truth)


def test_small_images_still_go_through_the_model_whole(slide, tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(squares_image(64, 80, np.asarray([[10, 10, 30, 30]], np.float32))).save(path)
    config = preset("fast", ["square"]).replace(min_size=64, max_size=96)
    model = SquareFinder(config.min_size, config.max_size)
    ((_, found),) = predict_images(model, config, [path])
    assert model.inputs == [(64, 80)] and found.boxes.tolist() == [[10, 10, 30, 30]]
