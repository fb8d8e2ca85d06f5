"""A model whose cap on detections per image cuts off confident objects predicts the image
again with room for them; a weak model that merely fills its cap is left as it is."""

from __future__ import annotations

import pytest
import torch

from napari_detlab.core.images import read_image, to_float_rgb
from napari_detlab.core.model.crowded import CONFIDENT_SCORE, CrowdedImage, detection_caps
from napari_detlab.core.model.predict import predict_images
from tiny_detector import noise_images, small_detector

CAP = 5


@pytest.fixture
def image(tmp_path):
    return noise_images(tmp_path / "images", [(90, 120)])[0]


def bare(model, image, cap: int) -> dict[str, torch.Tensor]:
    """torchvision's own output with ``cap`` detections kept, from ``2 * cap`` proposals."""
    tensor = torch.from_numpy(to_float_rgb(read_image(image))).permute(2, 0, 1)
    with torch.inference_mode(), detection_caps(model, cap):
        return model([tensor])[0]


def test_confident_objects_beyond_the_cap_are_found_with_more_room(image) -> None:
    model, config = small_detector(CAP, confident=True)
    assert len(bare(model, image, CAP)["boxes"]) == CAP  # what one pass would have kept

    crowded: list[CrowdedImage] = []
    ((_, prediction),) = predict_images(model, config, [image], crowded=crowded)

    found = len(prediction)
    assert crowded == [CrowdedImage(image, CAP, found)]
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
    model, config = small_detector(CAP, confident=False)
    passes: list[int] = []
    forward = type(model).forward
    monkeypatch.setattr(
        type(model), "forward", lambda self, *a, **k: passes.append(1) or forward(self, *a, **k)
    )

    crowded: list[CrowdedImage] = []
    ((_, prediction),) = predict_images(model, config, [image], crowded=crowded)

    assert len(prediction) == CAP and prediction.scores.max() < CONFIDENT_SCORE
    assert len(passes) == 1 and crowded == []
