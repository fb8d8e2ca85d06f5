"""A model whose cap on detections per image cuts off confident objects predicts the image
again with room for them; a weak model that merely fills its cap is left as it is."""

from __future__ import annotations

import pytest
import torch

from napari_detlab.core.images import read_image, to_float_rgb
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.crowded import CONFIDENT_SCORE, detection_caps
from napari_detlab.core.model.predict import predict_images
from tiny_detector import noise_images

CAP = 5


def small_detector(*, confident: bool):
    """The fast preset at 96 px keeping :data:`CAP` detections from ``2 * CAP`` proposals.

    ``confident``: its box classifier calls every proposal a ``cell`` with a score near 1
    (a model that sees objects everywhere, as on a field of cells); otherwise, untrained,
    its scores sit around 0.4.
    """
    torch.manual_seed(0)
    config = preset("fast", ["cell", "crystal"]).replace(
        min_size=96, max_size=128, rpn_pre_nms_top_n_test=2 * CAP,
        rpn_post_nms_top_n_test=2 * CAP, box_detections_per_img=CAP,
    )  # fmt: skip
    model = build_model(config, load_weights=False).eval()
    if confident:
        classifier = model.roi_heads.box_predictor.cls_score
        with torch.no_grad():
            classifier.weight.zero_()
            classifier.bias.copy_(torch.tensor([0.0, 12.0, 0.0]))
    return model, config


@pytest.fixture
def image(tmp_path):
    return noise_images(tmp_path / "images", [(90, 120)])[0]


def bare(model, image, cap: int) -> dict[str, torch.Tensor]:
    """torchvision's own output with ``cap`` detections kept, from ``2 * cap`` proposals."""
    tensor = torch.from_numpy(to_float_rgb(read_image(image))).permute(2, 0, 1)
    with torch.inference_mode(), detection_caps(model, cap):
        return model([tensor])[0]


def test_confident_objects_beyond_the_cap_are_found_with_more_room(image) -> None:
    model, config = small_detector(confident=True)
    assert len(bare(model, image, CAP)["boxes"]) == CAP  # what one pass would have kept

    ((_, prediction),) = predict_images(model, config, [image])

    found = len(prediction)
    assert found > CAP and prediction.scores.min() >= CONFIDENT_SCORE
    room = CAP  # the room it was given: doubled until fewer than that came back
    while len(bare(model, image, room)["boxes"]) >= room:
        room *= 2
    expected = bare(model, image, room)
    assert room > CAP and found == len(expected["boxes"]) < room
    torch.testing.assert_close(torch.from_numpy(prediction.boxes), expected["boxes"])
    # The model keeps its own caps afterwards.
    assert model.roi_heads.detections_per_img == CAP
    assert model.rpn.post_nms_top_n() == 2 * CAP and model.rpn.pre_nms_top_n() == 2 * CAP


def test_a_weak_model_that_fills_its_cap_is_not_run_again(image, monkeypatch) -> None:
    model, config = small_detector(confident=False)
    passes: list[int] = []
    forward = type(model).forward
    monkeypatch.setattr(
        type(model), "forward", lambda self, *a, **k: passes.append(1) or forward(self, *a, **k)
    )

    ((_, prediction),) = predict_images(model, config, [image])

    assert len(prediction) == CAP and prediction.scores.max() < CONFIDENT_SCORE
    assert len(passes) == 1
