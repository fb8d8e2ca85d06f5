"""A local weights server (127.0.0.1 only) for the download tests of the core and the dock.

:class:`WeightsServer` serves named files and can send them slowly or cut the connection
halfway; :func:`weights_payload` is a small real ``.pth`` file and :func:`hashed_name` names
it the way torchvision does (the first hex digits of its SHA-256), rightly or wrongly.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import time

import torch


def weights_payload(size: int = 0) -> bytes:
    """The bytes of a torch-saved backbone state dict, padded by ``size`` floats."""
    buffer = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(4, 3, 1, 1), "pad": torch.zeros(size)}, buffer)
    return buffer.getvalue()


def hashed_name(body: bytes, *, right_hash: bool = True, stem: str = "tiny") -> str:
    """``<stem>-<first 8 hex digits of body's SHA-256>.pth`` (a wrong hash if asked)."""
    digest = hashlib.sha256(body).hexdigest()[:8]
    return f"{stem}-{digest if right_hash else '00000000'}.pth"


def unused_port() -> int:
    """A port of 127.0.0.1 nobody listens on: a server that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WeightsServer:
    """A local HTTP server serving ``files``; it can go slowly or cut off halfway."""

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
                try:
                    for start in range(0, len(sent), 1 << 16):
                        self.wfile.write(sent[start : start + (1 << 16)])
                        time.sleep(outer.chunk_delay_s)
                except OSError:  # the client hung up (a cancelled download)
                    pass

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self) -> WeightsServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
