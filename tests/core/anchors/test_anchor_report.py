"""AnchorReport: typed fields named for what they count, the old JSON keys, the dock's words."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anchor_scene import EXACT, LINE
from napari_detlab.core.anchors.coverage import ImageBoxes
from napari_detlab.core.anchors.figures import (
    UNCAUGHT_COLUMNS,
    ZONE_COLORS,
    CoverageFigures,
    ShapeFigures,
    UncaughtBox,
    format_percent,
    zone_color,
)
from napari_detlab.core.anchors.report import AnchorReport, anchor_report
from napari_detlab.core.anchors.suggest import AnchorSuggestion
from napari_detlab.core.model.config import preset


def _known(images: int = 3) -> list[ImageBoxes]:
    boxes = np.array([EXACT, LINE], np.float32)
    return [
        ImageBoxes(boxes, ["cell", "debris"], image=f"data/img{i}.png", image_size=(256, 256))
        for i in range(images)
    ] + [ImageBoxes(image="data/negative.png", image_size=(256, 256))]  # left out


@pytest.fixture(scope="module")
def report() -> AnchorReport:
    return anchor_report(preset("fast", ["cell", "debris"]), _known())


def test_fields_hold_the_known_answer(report):
    f = report.figures
    assert (f.boxes, f.recall, f.share_between, f.share_below, f.no_positive) == (
        6, 0.5, 0.0, 0.5, 0,
    )  # fmt: skip
    assert report.images == 3  # the negative image holds no box: not counted
    assert (report.bg_thresh, report.fg_thresh) == (0.3, 0.7)
    assert report.per_class["cell"] == CoverageFigures(3, 1.0, 0.0, 0.0, 0, 1.0)
    assert report.per_class["debris"].recall == 0.0 and report.per_class["debris"].share_below == 1
    assert report.per_size["large"] == CoverageFigures()  # no box: every fraction None
    assert report.per_level == [3, 0, 3, 0, 0]  # lines on level 0, exact boxes on level 2
    assert report.shape.bpr == 0.5
    assert report.tiny_boxes == 3  # the lines are 2 px wide
    assert report.uncaught_total == 3
    assert [(row.image, row.box_index, row.label, row.reason) for row in report.uncaught] == [
        (f"data/img{i}.png", 1, "debris", "below_bg") for i in range(3)
    ]
    assert sorted(report.best_iou.tolist())[-3:] == [1.0, 1.0, 1.0]
    assert len(report.best_iou) == 6 and report.suggestion is None


def test_to_dict_keeps_the_json_keys_and_order_scripts_read(report):
    data = report.to_dict()
    assert list(data) == [
        "boxes", "recall_07", "share_03_07", "share_below_03", "no_positive", "mean_placed_iou",
        "images", "fg_thresh", "bg_thresh", "mean_positives", "per_class", "per_size",
        "per_level", "bpr", "anchors_per_target", "mean_best_iou", "tiny_boxes",
        "uncaught_total", "uncaught", "anchor_sizes", "aspect_ratios",
    ]  # fmt: skip
    assert data["recall_07"] == report.figures.recall
    assert data["share_03_07"] == report.figures.share_between
    assert data["share_below_03"] == report.figures.share_below
    assert data["per_class"]["debris"]["recall_07"] == 0.0
    assert data["uncaught"][0] == {
        "image": "data/img0.png", "image_index": 0, "box_index": 1, "label": "debris",
        "best_iou": 0.0733, "num_positive": 126, "best_level": 0,
        "box": [10.0, 10.0, 12.0, 200.0], "reason": "below_bg",
    }  # fmt: skip
    json.dumps(data)  # plain data only: no numpy scalars, no arrays


def test_the_json_names_stay_whatever_the_thresholds():
    config = preset("fast", ["cell", "debris"]).replace(rpn_fg_iou_thresh=0.6)
    report = anchor_report(config, _known(1))
    assert report.fg_thresh == 0.6
    assert "recall_07" in report.to_dict() and "recall_06" not in report.to_dict()
    assert "recall@0.6 50.0%, [0.3, 0.6) 0.0%, < 0.3 50.0%" in report.summary()


def test_summary_is_the_docks_figures_text(report):
    assert report.summary() == (
        "6 boxes in 3 images: recall@0.7 50.0%, [0.3, 0.7) 0.0%, < 0.3 50.0%, 0 with no "
        "positive anchor\nper class: cell 100.0%, debris 0.0%\nper size: small 0.0%, medium "
        "100.0%\nshape-only: BPR 50.0%, mean best IoU 0.537\n3 box(es) under 3 px after resizing"
    )


def test_suggestion_report_and_its_summary():
    config = preset("fast", ["cell", "debris"])
    report = anchor_report(config, _known(), suggest=True, uncaught_limit=1)
    suggestion = report.suggestion
    assert isinstance(suggestion, AnchorSuggestion)
    assert len(report.uncaught) == 1 and report.uncaught_total == 3
    data = report.to_dict()["suggestion"]
    assert list(data) == ["anchor_sizes", "aspect_ratios", "improved", "before", "after",
                          "warnings"]  # fmt: skip
    assert data["anchor_sizes"] == suggestion.config.anchor_sizes
    assert list(data["before"]) == ["recall_07", "share_03_07", "share_below_03", "no_positive",
                                    "mean_placed_iou", "bpr", "anchors_per_target",
                                    "mean_best_iou"]  # fmt: skip
    assert data["before"]["recall_07"] == suggestion.before.recall == 0.5
    first = suggestion.summary().splitlines()[0]
    assert first.startswith(f"recall@0.7 50.0% -> {format_percent(suggestion.after.recall)}; ")
    assert any("3 px" in line for line in suggestion.summary().splitlines()[1:])


def test_suggestion_summary_names_its_configs_thresholds():
    config = preset("fast", ["a"]).replace(rpn_fg_iou_thresh=0.8, rpn_bg_iou_thresh=0.4)
    figures = CoverageFigures(4, 0.25, 0.25, 0.5, 1, 0.4)
    shape = ShapeFigures(0.5, 2.0, 0.3)
    text = AnchorSuggestion(config, figures, figures, shape, shape, improved=False).summary()
    assert text == (
        "recall@0.8 25.0% -> 25.0%; < 0.4 50.0% -> 50.0%; mean best IoU 0.300 -> 0.300\n"
        "(no better than the current anchors)"
    )


def test_percentages_zones_and_table_cells():
    assert format_percent(None) == "n/a" and format_percent(0.875) == "87.5%"
    assert [zone_color(v, 0.3, 0.7) for v in (0.1, 0.3, 0.69, 0.7)] == [
        ZONE_COLORS["low"], ZONE_COLORS["mid"], ZONE_COLORS["mid"], ZONE_COLORS["high"],
    ]  # fmt: skip
    row = UncaughtBox("/data/a b.png", 0, 7, "cell", 0.12345, 0, 1, [0, 0, 1, 1], "below_bg")
    assert dict(zip(UNCAUGHT_COLUMNS, row.cells(), strict=True)) == {
        "Image": "a b.png", "Box": "7", "Class": "cell", "Best IoU": "0.123", "Why": "below_bg",
    }  # fmt: skip
