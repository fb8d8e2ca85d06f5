"""Anchors where the RPN really puts them, coverage under its real matching rules, suggestions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection.transform import resize_boxes

from napari_detlab.core.anchors.coverage import (
    ImageBoxes,
    brute_force_coverage,
    brute_force_image,
    measure_coverage,
)
from napari_detlab.core.anchors.layout import AnchorLayout, resize_geometry, transform_geometry
from napari_detlab.core.anchors.report import anchor_report
from napari_detlab.core.anchors.suggest import iou_kmeans, shape_metrics, suggest_anchors
from napari_detlab.core.images import image_size
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.config import ModelConfig, preset

LAYOUT_CASES = [
    # backbone, fpn, sizes, ratios, min/max size, image (h, w)
    (
        "resnet18",
        True,
        [[16], [32], [64], [128], [256]],
        [[0.5, 1.0, 2.0]] * 5,
        128,
        224,
        (150, 257),
    ),
    ("resnet18", False, [[32, 64, 128]], [[0.5, 1.0]], 96, 160, (201, 97)),
    (
        "mobilenet_v3_large",
        True,
        [[24, 48], [96, 160], [256, 400]],
        [[0.7, 1.4]] * 3,
        160,
        200,
        (120, 330),
    ),
    ("mobilenet_v3_large", False, [[40, 90]], [[1.0]], 128, 200, (99, 100)),
]


@pytest.mark.parametrize("case", LAYOUT_CASES, ids=lambda c: f"{c[0]}-fpn{c[1]}-{c[6]}")
def test_layout_matches_anchor_generator_inside_fasterrcnn_forward(case):
    """What the layout says equals what torchvision's RPN receives in a real forward pass."""
    backbone, fpn, sizes, ratios, min_size, max_size, (h, w) = case
    config = ModelConfig(
        classes=["cell"], backbone=backbone, fpn=fpn, min_size=min_size, max_size=max_size,
        anchor_sizes=sizes, aspect_ratios=ratios,
    )  # fmt: skip
    model = build_model(config, load_weights=False).eval()
    seen = {}

    def hook(module, inputs, output):
        image_list, feature_maps = inputs
        seen["resized"] = tuple(image_list.image_sizes[0])
        seen["padded"] = tuple(image_list.tensors.shape[-2:])
        seen["grids"] = [tuple(f.shape[-2:]) for f in feature_maps]
        seen["anchors"] = output[0].detach().clone()

    model.rpn.anchor_generator.register_forward_hook(hook)
    with torch.no_grad():
        model([torch.rand(3, h, w)])

    layout = AnchorLayout.from_config(config, (h, w))
    assert layout.resized_size == seen["resized"]
    assert layout.padded_size == seen["padded"]
    assert [tuple(g) for g in layout.grid_sizes] == seen["grids"]
    assert np.array_equal(layout.anchors_resized(), seen["anchors"].numpy())
    # Mapped back to the original image the way torchvision maps its detections back.
    expected = resize_boxes(seen["anchors"], seen["resized"], (h, w)).numpy()
    np.testing.assert_allclose(layout.anchors(), expected, rtol=1e-5, atol=1e-3)
    # Per-level views and positions agree with the flat list.
    for level, (gh, gw) in enumerate(layout.grid_sizes):
        assert len(layout.centres(level)) == gh * gw
        assert len(layout.anchors(level)) == gh * gw * layout.anchors_per_location[level]


@settings(max_examples=200, deadline=None)
@given(
    h=st.integers(1, 4000), w=st.integers(1, 4000), min_size=st.integers(32, 1400),
    extra=st.integers(0, 1400),
)  # fmt: skip
def test_resize_geometry_equals_torchvision_transform(h, w, min_size, extra):
    max_size = min_size + extra
    scale = min(min_size / min(h, w), max_size / max(h, w))
    if min(h, w) * scale < 1:  # torchvision itself fails on these: we say why instead
        with pytest.raises(ValueError, match="cannot resize"):
            resize_geometry((h, w), min_size, max_size)
        return
    assert resize_geometry((h, w), min_size, max_size) == transform_geometry(
        (h, w), min_size, max_size
    )


def test_anchors_at_a_point_are_the_cell_anchors_nearest_it():
    config = ModelConfig(classes=["a"], min_size=256, max_size=512)
    layout = AnchorLayout.from_config(config, (300, 400))
    x, y = 123.4, 77.7
    for level in range(layout.num_levels):
        found = layout.anchors_at(x, y, level)
        centres = (found[:, :2] + found[:, 2:]) / 2
        assert len(found) == layout.anchors_per_location[level]
        nearest = layout.centres(level)[
            np.argmin(np.abs(layout.centres(level) - [x, y]).max(axis=1))
        ]
        np.testing.assert_allclose(centres, np.broadcast_to(nearest, centres.shape), atol=1e-6)
        # and they are genuinely among the level's anchors
        level_anchors = layout.anchors(level)
        assert all(np.isclose(level_anchors, a).all(axis=1).any() for a in found)


def _random_items(rng, n_images, sizes, crowded=False):
    items = []
    for i in range(n_images):
        h, w = sizes[i % len(sizes)]
        n = int(rng.integers(1, 14))
        if crowded:  # a pile of overlapping boxes, duplicates included
            cx, cy = (
                rng.uniform(0.3, 0.6) * w + rng.normal(0, 6, n),
                rng.uniform(0.3, 0.6) * h + rng.normal(0, 6, n),
            )
            bw, bh = rng.uniform(6, 70, n), rng.uniform(6, 70, n)
        else:
            cx, cy = rng.uniform(0, w, n), rng.uniform(0, h, n)
            bw = np.exp(rng.uniform(np.log(2), np.log(max(h, w)), n))
            bh = bw * np.exp(rng.normal(0, 0.7, n))
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        boxes = boxes.clip(0, [w, h, w, h])
        boxes = boxes[(boxes[:, 2] - boxes[:, 0] > 0.5) & (boxes[:, 3] - boxes[:, 1] > 0.5)]
        if crowded and len(boxes) > 1:
            boxes = np.concatenate([boxes, boxes[:1]])  # an exact duplicate: ties between boxes
        labels = [("cell", "debris")[j % 2] for j in range(len(boxes))]
        items.append(ImageBoxes(boxes, labels, image=f"img{i}.png", image_size=(h, w)))
    return items


@pytest.mark.parametrize("crowded", [False, True], ids=["scattered", "crowded"])
def test_coverage_equals_box_iou_and_torchvision_matcher(crowded):
    """Best IoU, positives and best level agree with the full IoU matrix + Matcher."""
    rng = np.random.default_rng(1 if crowded else 2)
    config = ModelConfig(classes=["cell", "debris"], min_size=128, max_size=224)
    # Several original sizes, some padding to the same size (and so sharing one anchor grid).
    items = _random_items(rng, 40, [(120, 160), (121, 161), (200, 90), (64, 64)], crowded)
    result = measure_coverage(config, items)
    best, positives, level = brute_force_coverage(config, items)
    assert np.array_equal(result.best_iou, best)  # bitwise: the same float32 IoUs
    assert np.array_equal(result.num_positive, positives)
    assert np.array_equal(result.best_level, level)
    if crowded:  # the case is only a test if some box lost its anchors to a neighbour
        assert (positives == 0).any()
        assert {row.reason for row in result.uncaught()} >= {"no_positive"}


def test_low_quality_match_goes_to_the_anchors_own_best_box():
    """Two boxes whose only good anchor is the same: the anchor goes to the box it fits best."""
    config = ModelConfig(
        classes=["a"], backbone="resnet18", fpn=False, min_size=128, max_size=128,
        anchor_sizes=[[64]], aspect_ratios=[[1.0]],
    )  # fmt: skip
    layout = AnchorLayout.from_config(config, (128, 128))
    # Both boxes sit around the anchor centred at (64, 64); box 1 fits it better than box 0,
    # and no other anchor (stride 32) reaches box 0 as well as this one does.
    boxes = np.array([[40.0, 40.0, 90.0, 90.0], [33.0, 33.0, 95.0, 95.0]], np.float32)
    result = measure_coverage(
        config, [ImageBoxes(boxes, ["a", "a"], image="x.png", image_size=(128, 128))]
    )
    _, positives, _ = brute_force_image(layout, boxes)
    assert np.array_equal(result.num_positive, positives)
    assert result.num_positive[0] == 0 and result.num_positive[1] >= 1
    assert result.uncaught()[0].reason == "no_positive"


def test_figures_split_by_class_size_and_threshold():
    config = ModelConfig(classes=["a"], min_size=256, max_size=256)
    layout = AnchorLayout.from_config(config, (256, 256))
    exact = layout.anchors_resized(2)[200:201]  # a box equal to one anchor: IoU 1
    bad = np.array([[10.0, 10.0, 12.0, 200.0]], np.float32)  # a thin line: no anchor fits
    boxes = np.concatenate([exact, bad])
    items = [ImageBoxes(boxes, ["a", "b"], image="a.png", image_size=(256, 256))]
    result = measure_coverage(config, items)
    figures = result.figures()
    assert figures.boxes == 2 and figures.recall == 0.5
    assert figures.share_below == 0.5
    assert result.per_class()["a"].recall == 1.0
    assert result.per_class()["b"].recall == 0.0
    assert result.per_level()[2] >= 1


def test_shape_metrics_known_values():
    anchors = np.array([[32.0, 32.0], [64.0, 32.0]])
    same = shape_metrics(anchors, anchors)
    assert same.bpr == 1.0 and same.mean_best_iou == pytest.approx(1.0)
    far = shape_metrics(np.array([[32.0 * 5, 32.0 * 5]]), anchors)
    assert far.bpr == 0.0 and far.anchors_per_target == 0.0
    assert far.mean_best_iou == pytest.approx(2048 / 25600)


def test_iou_kmeans_recovers_separated_shapes():
    rng = np.random.default_rng(0)
    truth = np.array([[10.0, 40.0], [40.0, 10.0], [80.0, 80.0]])
    wh = np.concatenate([t * rng.uniform(0.95, 1.05, (50, 2)) for t in truth])
    centres = iou_kmeans(wh, 3)
    for t in truth:
        assert np.abs(centres - t).max(axis=1).min() < 3


def _rods(n_images=60, seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_images):
        n = 6
        w = rng.uniform(60, 90, n)
        h = w / rng.uniform(4, 6, n)  # wide, thin objects: far from the 0.5-2 default ratios
        cx, cy = rng.uniform(60, 580, n), rng.uniform(30, 450, n)
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        items.append(ImageBoxes(boxes, ["rod"] * n, image=f"r{i}.png", image_size=(480, 640)))
    return items


def test_suggestion_keeps_counts_per_level_and_improves_coverage():
    config = ModelConfig(
        classes=["rod"], min_size=256, max_size=512,
        anchor_sizes=[[16, 24], [32, 48], [64, 96], [128, 192], [256, 384]],
        aspect_ratios=[[0.5, 1.0, 2.0]] * 5,
    )  # fmt: skip
    items = _rods()
    suggestion = suggest_anchors(config, items)
    new = suggestion.config.validate()
    assert all(len(s) == 2 for s in new.anchor_sizes)
    assert all(len(r) == 3 for r in new.aspect_ratios)
    assert new.anchors_per_location == config.anchors_per_location
    flat = [s for level in new.anchor_sizes for s in level]
    assert flat == sorted(flat)  # clusters dealt to levels by size
    assert suggestion.improved
    assert suggestion.after.recall > suggestion.before.recall + 0.2
    assert suggestion.shape_after.mean_best_iou > suggestion.shape_before.mean_best_iou
    # the suggestion's own figures are what a fresh coverage run says
    assert measure_coverage(new, items).figures().recall == suggestion.after.recall


def test_report_warns_about_tiny_boxes_and_caps_the_uncaught_list():
    config = ModelConfig(classes=["dot"], min_size=256, max_size=512)
    boxes = np.array([[10, 10, 12, 12], [50, 50, 53, 52], [100, 100, 140, 130]], np.float32)
    items = [
        ImageBoxes(boxes, ["dot"] * 3, image=f"d{i}.png", image_size=(512, 512)) for i in range(5)
    ]
    report = anchor_report(config, items, suggest=True, uncaught_limit=3)
    assert report.tiny_boxes == 10  # both tiny boxes shrink under 3 px at half scale
    assert len(report.uncaught) == 3 and report.uncaught_total >= 10
    assert any("3 px" in w for w in report.suggestion.warnings)


HEADS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "heads"


@pytest.mark.skipif(not (HEADS / "target").is_dir(), reason="the shared heads dataset is absent")
def test_real_heads_dataset_exact_and_improved_by_suggestion():
    """20 real photographs of many sizes: exact against brute force; the fit raises recall."""
    items = []
    for image in sorted((HEADS / "input").iterdir()):
        target = json.loads((HEADS / "target" / f"{image.stem}.json").read_text())
        boxes = np.array(target["boxes"], np.float32)
        items.append(ImageBoxes(boxes, target["labels"], image=image, image_size=image_size(image)))
    config = preset("fast", ["head"])
    result = measure_coverage(config, items)
    best, positives, level = brute_force_coverage(config, items)
    assert len(result) == 177
    assert np.array_equal(result.best_iou, best)
    assert np.array_equal(result.num_positive, positives)
    assert np.array_equal(result.best_level, level)
    suggestion = suggest_anchors(config, items, base=result)
    assert suggestion.after.recall > suggestion.before.recall + 0.3
