"""Pretrained weights downloaded only when asked, from a local server: success, a wrong file,
a server that is down, a cut connection and a cancel, none of which leaves a file behind."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from napari_detlab.core.model.config import preset, resolve_model_config
from napari_detlab.core.model.download import (
    DownloadCancelledError,
    DownloadError,
    download_weights,
    find_weights,
)
from napari_detlab.core.model.weights_catalog import (
    KnownWeights,
    describe_start,
    weights_for,
    with_best_start,
)


def _payload(size: int = 0) -> bytes:
    buffer = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(4, 3, 1, 1), "pad": torch.zeros(size)}, buffer)
    return buffer.getvalue()


class _Server:
    """A local HTTP server (127.0.0.1 only) serving ``files``; it can go slowly or cut off."""

    def __init__(self, files: dict[str, bytes], *, chunk_delay_s: float = 0.0, cut: bool = False):
        outer = self
        self.files, self.chunk_delay_s, self.cut = files, chunk_delay_s, cut

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = outer.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                sent = body[: len(body) // 2] if outer.cut else body
                for start in range(0, len(sent), 1 << 16):
                    self.wfile.write(sent[start : start + (1 << 16)])
                    time.sleep(outer.chunk_delay_s)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def _named(body: bytes, *, right_hash: bool = True) -> str:
    digest = hashlib.sha256(body).hexdigest()[:8]
    return f"tiny-{digest if right_hash else '00000000'}.pth"


def _weights(url: str) -> KnownWeights:
    return KnownWeights("tiny", "resnet18", "imagenet", url)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_download_lands_where_torchvision_looks_with_progress(torch_home):
    body = _payload(300_000)
    name = _named(body)
    seen: list[tuple[int, int]] = []
    with _Server({name: body}) as server:
        weights = _weights(server.url(name))
        path = download_weights(weights, on_progress=lambda d, t: seen.append((d, t)))
    assert path == torch_home / name and path.read_bytes() == body
    assert seen[-1] == (len(body), len(body)) and len(seen) >= 2
    assert _leftovers(torch_home) == [name]  # no temp file beside it
    assert weights.present


def test_bytes_that_do_not_match_the_hash_are_not_kept(torch_home):
    body = _payload()
    name = _named(body, right_hash=False)
    with _Server({name: body}) as server, pytest.raises(DownloadError, match="SHA-256 starts"):
        download_weights(_weights(server.url(name)))
    assert _leftovers(torch_home) == []


def test_a_server_that_is_down_is_one_clear_error(torch_home):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    weights = _weights(f"http://127.0.0.1:{port}/tiny-12345678.pth")
    with pytest.raises(DownloadError, match=r"cannot download .*copy tiny-12345678\.pth"):
        download_weights(weights)
    assert _leftovers(torch_home) == []


def test_a_cut_connection_leaves_nothing(torch_home):
    body = _payload(400_000)
    name = _named(body)
    with _Server({name: body}, cut=True) as server, pytest.raises(DownloadError):
        download_weights(_weights(server.url(name)))
    assert _leftovers(torch_home) == []


def test_cancelling_midway_leaves_no_partial_file_and_keeps_an_old_one(torch_home):
    body = _payload(2_000_000)
    name = _named(body)
    torch_home.mkdir(parents=True)
    (torch_home / name).write_bytes(b"what was there before")
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        cancel.set()  # the user presses Cancel after the first chunk

    server = _Server({name: body}, chunk_delay_s=0.01)
    with server, pytest.raises(DownloadCancelledError):
        download_weights(_weights(server.url(name)), on_progress=progress, cancel=cancel)
    assert 0 < seen[-1] < len(body)
    assert _leftovers(torch_home) == [name]
    assert (torch_home / name).read_bytes() == b"what was there before"


def test_a_mirror_is_checked_against_the_official_name(torch_home):
    body = _payload()
    official = KnownWeights("tiny", "resnet18", "imagenet", f"https://example.org/{_named(body)}")
    with _Server({"mirror/file.pth": body}) as server:
        path = download_weights(official, source=server.url("mirror/file.pth"))
    assert path.name == _named(body) and path.read_bytes() == body


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
