"""Prediction: batches give what the model gives, in original pixels, written safely to disk."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import oriented_photos as photos
from napari_detlab.core.images import read_image, to_float_rgb
from napari_detlab.core.model.builder import build_model
from napari_detlab.core.model.checkpoint import save_checkpoint
from napari_detlab.core.model.config import preset
from napari_detlab.core.model.predict import (
    Prediction,
    PredictionError,
    SkippedImage,
    collect_images,
    load_prediction,
    predict_folder,
    predict_images,
    write_prediction,
)
from tiny_detector import noise_images

SIZES = [(70, 100), (120, 90), (64, 64)]  # (h, w): none is the model's 96 px input size


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    config = preset("fast", ["cell", "crystal"]).replace(
        min_size=96, max_size=128, rpn_post_nms_top_n_test=60, box_detections_per_img=60
    )
    return build_model(config, load_weights=False).eval(), config


@pytest.fixture
def images(tmp_path):
    return noise_images(tmp_path / "images", SIZES)


def _model_input(path):
    return torch.from_numpy(to_float_rgb(read_image(path))).permute(2, 0, 1)


def test_batched_predictions_equal_a_bare_torchvision_call(tiny, images):
    model, config = tiny
    results = list(predict_images(model, config, images, batch_size=2))
    assert [path for path, _ in results] == images
    with torch.inference_mode():  # the same batches, straight through torchvision
        direct = model([_model_input(p) for p in images[:2]]) + model([_model_input(images[2])])
    for (_, prediction), expected, (h, w) in zip(results, direct, SIZES, strict=True):
        assert prediction.image_size == (h, w)
        assert len(prediction) > 0 and prediction.boxes.dtype == np.float32
        np.testing.assert_array_equal(prediction.boxes, expected["boxes"].numpy())
        np.testing.assert_array_equal(prediction.scores, expected["scores"].numpy())
        assert prediction.labels == [config.classes[i - 1] for i in expected["labels"].tolist()]
        # Boxes are in pixels of the original image, not of the model's resized input.
        assert prediction.boxes[:, 2].max() > 0.8 * w and prediction.boxes[:, 3].max() > 0.8 * h
        assert (prediction.boxes[:, 2] <= w).all() and (prediction.boxes[:, 3] <= h).all()
        assert prediction.score_floor == pytest.approx(0.01) and prediction.model_nms_thresh == 0.5
        assert prediction.scores.min() >= 0.01


def test_broken_images_are_skipped_and_reported(tiny, images, tmp_path):
    model, config = tiny
    broken = tmp_path / "images" / "broken.png"
    broken.write_bytes(b"not a png")
    skipped: list[SkippedImage] = []
    results = list(predict_images(model, config, [images[0], broken, images[1]], skipped=skipped))
    assert [path for path, _ in results] == [images[0], images[1]]
    assert [item.path for item in skipped] == [broken] and "broken.png" in skipped[0].reason


def test_prediction_files_round_trip_and_bad_ones_are_named(tmp_path):
    prediction = Prediction([[1, 2, 30, 40]], ["cell"], [0.75], image_size=(50, 60))
    path = write_prediction(
        tmp_path, "a", prediction, score_floor=0.01, model_nms_thresh=0.5, checkpoint="m.pt"
    )
    raw = torch.load(path, weights_only=True)
    assert set(raw) >= {
        "boxes",
        "labels",
        "scores",
        "image_size",
        "score_floor",
        "model_nms_thresh",
        "checkpoint",
    }
    assert raw["boxes"].dtype == torch.float32 and raw["scores"].dtype == torch.float32
    loaded = load_prediction(path)
    assert (
        loaded.labels == ["cell"] and loaded.image_size == (50, 60) and loaded.checkpoint == "m.pt"
    )
    np.testing.assert_array_equal(loaded.boxes, prediction.boxes)
    torch.save(
        {"boxes": torch.zeros(2, 4), "labels": ["cell"], "scores": torch.ones(2)},
        tmp_path / "bad.pt",
    )
    with pytest.raises(PredictionError, match=r"bad\.pt: 2 boxes, 2 scores and 1 labels"):
        load_prediction(tmp_path / "bad.pt")
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temp files


def test_predict_folder_writes_one_file_per_image_with_progress(tiny, images, tmp_path):
    model, config = tiny
    checkpoint = save_checkpoint(tmp_path / "m.pt", model=model, config=config, epoch=1, metrics={})
    progress = []
    written = predict_folder(
        checkpoint, images[0].parent, tmp_path / "preds", batch_size=2, device="cpu",
        on_progress=lambda done, total, path: progress.append((done, total, path.name)),
    )  # fmt: skip
    assert [p.name for p in written] == ["im0.pt", "im1.pt", "im2.pt"]
    assert progress == [(1, 3, "im0.png"), (2, 3, "im1.png"), (3, 3, "im2.png")]
    loaded = load_prediction(written[1])
    assert loaded.checkpoint == str(checkpoint.resolve()) and loaded.image_size == SIZES[1]
    assert loaded.score_floor == pytest.approx(0.01)

    cancel = threading.Event()
    again = predict_folder(
        checkpoint, images, tmp_path / "cancelled", batch_size=1, device="cpu",
        on_progress=lambda *_: cancel.set(), cancel=cancel,
    )  # fmt: skip
    assert len(again) == 1  # stopped after the batch in flight


def test_collect_images_refuses_missing_empty_and_clashing_inputs(tmp_path, images):
    assert collect_images([images[0], images[0].parent]) == images
    with pytest.raises(FileNotFoundError):
        collect_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        collect_images(tmp_path / "empty")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(images[0].with_suffix(".jpg"))
    with pytest.raises(ValueError, match="share the name 'im0'"):
        collect_images(images[0].parent)


def test_prefetching_decoder_gives_the_same_batches(images, tmp_path):
    # The GPU path decodes ahead in a thread; CI has no GPU, so check the decoder itself.
    from napari_detlab.core.model.predict import _decoded_batches

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    batches = [[images[0], broken], [images[1]], [images[2]]]
    inline = list(_decoded_batches(batches, prefetch=False))
    ahead = list(_decoded_batches(batches, prefetch=True))
    assert [b for b, _ in ahead] == batches
    for (_, first), (_, second) in zip(inline, ahead, strict=True):
        for a, b in zip(first, second, strict=True):
            assert type(a) is type(b)
            if not isinstance(a, SkippedImage):
                assert torch.equal(a[0], b[0]) and a[1] == b[1]


class BrightBlockFinder(nn.Module):
    """A "detector" that boxes the bright pixels of each image it is given, so its boxes say
    which pixels the model saw."""

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        found = []
        for image in images:
            rows, cols = torch.nonzero(image.mean(0) > (photos.BRIGHT - 40) / 255, as_tuple=True)
            box = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            found.append({"boxes": torch.tensor([box], dtype=torch.float32),
                          "labels": torch.tensor([1]), "scores": torch.tensor([0.9])})  # fmt: skip
        return found


@pytest.mark.parametrize("orientation", photos.ORIENTATIONS)
def test_prediction_sees_a_photo_as_shown(tmp_path, orientation):
    photo = photos.write_photo(tmp_path / "photo.jpg", orientation)
    config = preset("fast", ["head"])
    [(path, prediction)] = predict_images(BrightBlockFinder(), config, [photo])
    shown_size, object_box, _ = photos.SHOWN[orientation]
    assert path == photo and prediction.image_size == shown_size
    np.testing.assert_array_equal(prediction.boxes, [object_box])
    written = write_prediction(tmp_path / "predictions", "photo", prediction)
    assert torch.load(written, weights_only=True)["version"] == 2
    np.testing.assert_array_equal(load_prediction(written, photo).boxes, [object_box])


def test_a_version_1_prediction_is_moved_with_its_image(tmp_path):
    """Predicted by the previous version on the stored pixels: read with its image, the boxes
    land on the objects of the photo as shown; without the image they are left as written."""
    photo = photos.write_photo(tmp_path / "photo.jpg", 6)
    path = photos.save_version_1(tmp_path / "predictions" / "photo.pt", scores=[0.9, 0.8])
    moved = load_prediction(path, photo)
    np.testing.assert_array_equal(moved.boxes, photos.SHOWN[6][1:])
    assert moved.image_size == photos.SHOWN[6][0] and moved.labels == ["head", "tag"]
    np.testing.assert_allclose(moved.scores, [0.9, 0.8])
    np.testing.assert_array_equal(load_prediction(path).boxes, [photos.OBJECT, photos.CORNER])


def test_each_plane_of_a_stack_is_predicted_and_written_under_its_own_name(tiny, tmp_path):
    from stack_images import block_of, write_stack

    folder = tmp_path / "stacks"
    write_stack(folder / "z.tif", 3)
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(folder / "zz_flat.png")
    paths = collect_images(folder)
    assert [p.name for p in paths] == [f"z.plane-{k:04d}.tif" for k in range(3)] + ["zz_flat.png"]
    config = preset("fast", ["head"])
    found = dict(predict_images(BrightBlockFinder(), config, paths[:3]))
    for plane, path in enumerate(paths[:3]):  # the detector saw that plane's block
        np.testing.assert_array_equal(found[path].boxes, [block_of(plane)])

    model, tiny_config = tiny
    checkpoint = save_checkpoint(
        tmp_path / "m.pt", model=model, config=tiny_config, epoch=1, metrics={}
    )
    written = predict_folder(checkpoint, folder, tmp_path / "preds", device="cpu")
    names = [p.name for p in written]
    assert names == ["z.plane-0000.pt", "z.plane-0001.pt", "z.plane-0002.pt", "zz_flat.pt"]
    assert load_prediction(written[1]).image_size == (40, 60)
