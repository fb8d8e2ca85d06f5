"""Pretrained weights downloaded only when asked, from a local server: success, a wrong file,
a server that is down, a cut connection and a cancel, none of which leaves a file behind; and
the starting points a model can be given, each saying whether its file is here."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from napari_detlab.core.model.config import ConfigError, preset, resolve_model_config
from napari_detlab.core.model.download import (
    DownloadCancelledError,
    DownloadError,
    download_weights,
    find_weights,
)
from napari_detlab.core.model.weights import WeightsNotFoundError, required_weights_file
from napari_detlab.core.model.weights_catalog import (
    KnownWeights,
    describe_start,
    start_choice_title,
    start_choices,
    weights_for,
    weights_to_fetch,
    with_best_start,
    with_start,
)
from weights_server import WeightsServer, hashed_name, unused_port, weights_payload


def _weights(url: str) -> KnownWeights:
    return KnownWeights("tiny", "resnet18", "imagenet", url)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_download_lands_where_torchvision_looks_with_progress(torch_home):
    body = weights_payload(300_000)
    name = hashed_name(body)
    seen: list[tuple[int, int]] = []
    with WeightsServer({name: body}) as server:
        weights = _weights(server.url(name))
        path = download_weights(weights, on_progress=lambda d, t: seen.append((d, t)))
    assert path == torch_home / name and path.read_bytes() == body
    assert seen[-1] == (len(body), len(body)) and len(seen) >= 2
    assert _leftovers(torch_home) == [name]  # no temp file beside it
    assert weights.present


def test_bytes_that_do_not_match_the_hash_are_not_kept(torch_home):
    body = weights_payload()
    name = hashed_name(body, right_hash=False)
    with (
        WeightsServer({name: body}) as server,
        pytest.raises(DownloadError, match="SHA-256 starts"),
    ):
        download_weights(_weights(server.url(name)))
    assert _leftovers(torch_home) == []


def test_a_server_that_is_down_is_one_clear_error(torch_home):
    weights = _weights(f"http://127.0.0.1:{unused_port()}/tiny-12345678.pth")
    with pytest.raises(DownloadError, match=r"cannot download .*copy tiny-12345678\.pth"):
        download_weights(weights)
    assert _leftovers(torch_home) == []


def test_a_cut_connection_leaves_nothing(torch_home):
    body = weights_payload(400_000)
    name = hashed_name(body)
    with WeightsServer({name: body}, cut=True) as server, pytest.raises(DownloadError):
        download_weights(_weights(server.url(name)))
    assert _leftovers(torch_home) == []


def test_cancelling_midway_leaves_no_partial_file_and_keeps_an_old_one(torch_home):
    body = weights_payload(2_000_000)
    name = hashed_name(body)
    torch_home.mkdir(parents=True)
    (torch_home / name).write_bytes(b"what was there before")
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        cancel.set()  # the user presses Cancel after the first chunk

    server = WeightsServer({name: body}, chunk_delay_s=0.01)
    with server, pytest.raises(DownloadCancelledError):
        download_weights(_weights(server.url(name)), on_progress=progress, cancel=cancel)
    assert 0 < seen[-1] < len(body)
    assert _leftovers(torch_home) == [name]
    assert (torch_home / name).read_bytes() == b"what was there before"


def test_a_mirror_is_checked_against_the_official_name(torch_home):
    body = weights_payload()
    official = KnownWeights(
        "tiny", "resnet18", "imagenet", f"https://example.org/{hashed_name(body)}"
    )
    with WeightsServer({"mirror/file.pth": body}) as server:
        path = download_weights(official, source=server.url("mirror/file.pth"))
    assert path.name == hashed_name(body) and path.read_bytes() == body


def test_unknown_names_list_the_known_ones():
    assert find_weights("resnet18-imagenet").file_name.startswith("resnet18-")
    with pytest.raises(DownloadError, match="resnet18-imagenet"):
        find_weights("resnet19")


def test_presets_start_from_the_best_weights_present_and_say_which(torch_home):
    fast = preset("fast", ["cell"])
    assert with_best_start(fast).pretrained == "none"
    assert "detlab weights download resnet18-imagenet" in describe_start(with_best_start(fast))
    resnet18 = weights_for(fast.replace(pretrained="imagenet"))[0]
    resnet18.path.parent.mkdir(parents=True, exist_ok=True)
    resnet18.path.write_bytes(b"placed by hand, offline")
    started = resolve_model_config(["cell"], preset_name="fast")
    assert (started.pretrained, started.trainable_layers) == ("imagenet", 3)
    assert describe_start(started) == f"ImageNet backbone ({resnet18.file_name})"
    accurate = preset("accurate", ["cell"])
    coco = weights_for(accurate.replace(pretrained="coco"))[0]
    coco.path.write_bytes(b"placed by hand")
    assert with_best_start(accurate).pretrained == "coco"  # a COCO detector beats ImageNet
    assert with_best_start(accurate.replace(fpn=False)).pretrained == "none"  # no resnet50 file
    own = fast.replace(weights_path="/data/my.pth")
    assert with_best_start(own) == own and "my.pth" in describe_start(own)


def test_each_start_can_be_chosen_and_says_whether_its_file_is_here(torch_home):
    fast, accurate = preset("fast", ["cell"]), preset("accurate", ["cell"])
    assert start_choices(fast) == ["best", "none", "imagenet"]  # no COCO detector for resnet18
    assert start_choices(accurate) == ["best", "none", "imagenet", "coco"]
    assert start_choice_title(fast, "best") == "best present (now: from scratch)"
    assert start_choice_title(fast, "imagenet").startswith("ImageNet backbone: not here (")
    assert start_choice_title(accurate, "coco").startswith("COCO detector: not here (")
    assert weights_to_fetch(fast, "best").name == "resnet18-imagenet"  # what the line suggests
    assert weights_to_fetch(fast, "none") is None
    assert weights_to_fetch(accurate, "coco").name == "resnet50-fpn-coco"
    with pytest.raises(ConfigError, match="no COCO detector for resnet18"):
        with_start(fast, "coco")

    chosen = resolve_model_config(["cell"], preset_name="fast", start="imagenet")
    assert (chosen.pretrained, chosen.trainable_layers) == ("imagenet", 3)
    assert "NOT on this machine" in describe_start(chosen)
    with pytest.raises(WeightsNotFoundError, match="detlab weights download resnet18-imagenet"):
        required_weights_file(chosen)  # refused before a run starts

    resnet18 = weights_to_fetch(fast, "imagenet")
    resnet18.path.parent.mkdir(parents=True)
    resnet18.path.write_bytes(b"placed by hand, offline")
    assert start_choice_title(fast, "imagenet") == "ImageNet backbone: here"
    assert start_choice_title(fast, "best") == "best present (now: ImageNet backbone)"
    assert weights_to_fetch(fast, "imagenet") is None and weights_to_fetch(fast, "best") is None
    assert required_weights_file(chosen) == resnet18.path
    scratch = resolve_model_config(["cell"], preset_name="fast", start="none")
    assert (scratch.pretrained, scratch.trainable_layers) == ("none", 5)
    assert (
        describe_start(scratch)
        == "from scratch, as chosen (ImageNet backbone for resnet18 is here)"
    )
    own = fast.replace(weights_path="/data/my.pth")
    assert with_start(own, "imagenet").weights_path is None  # an explicit choice wins
