"""A real HTTP server on 127.0.0.1 serving weight files, and small files that load strictly.

Used by the download tests and the first-run GUI tests: no test reaches the internet. The
server can answer 404, serve HTML, honour Range requests and cut a response off midway.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from model.build import FUSION, PROPAGATION, S2M, NetworkSpec

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Route:
    """What the server answers for one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    cut_at: int | None = None  # stop sending at this byte offset of the file ...
    cuts: int = 0  # ... this many times, then serve normally


@dataclass
class Server:
    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)

    def hits(self, path: str) -> list[str | None]:
        """The Range header of every request for `path`, in order."""
        return [rng for p, rng in self.requests if p == path]

    def reset(self) -> Server:
        self.routes.clear()
        self.requests.clear()
        return self


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            server.requests.append((self.path, rng))
            route = server.routes.get(self.path)
            if route is None or route.status != 200:
                self.send_error(404 if route is None else route.status)
                return
            start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
            if start >= len(route.body) > 0:
                self.send_error(416)
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(route.body) - 1}/*")
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body) - start))
            self.end_headers()
            end = len(route.body)
            if route.cuts > 0 and route.cut_at is not None:
                # Announce the full length, send less, then close: a dropped connection.
                route.cuts -= 1
                end = max(start, route.cut_at)
            self.wfile.write(route.body[start:end])
            self.wfile.flush()
            self.close_connection = True

    return Handler


@contextmanager
def serving() -> Iterator[Server]:
    """A server on a free port of 127.0.0.1 for the duration of the block."""
    state = Server(base="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def save_bytes(sd: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def compact(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Stride-0 views of one element: the same keys, shapes and dtypes in a few bytes per tensor,
    # so the 200 MB networks become ~120 KB files that still load strictly.
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in sd.items()}


def network_bytes(net: NetworkSpec) -> bytes:
    return save_bytes(compact(net.factory().state_dict()))


def fbrs_state_dict() -> dict[str, torch.Tensor]:
    schema = json.loads((REPO / "model/schemas/fbrs.json").read_text())
    # Like the MXNet-converted release: no num_batches_tracked, an extra aspp_dropout scalar.
    sd = {
        k: torch.zeros(()).expand(shape)
        for k, shape in schema["keys"].items()
        if not k.endswith("num_batches_tracked")
    }
    sd["aspp_dropout"] = torch.tensor(0.2)
    return sd


def compact_weight_files() -> dict[str, bytes]:
    """file name -> bytes of a small file that loads strictly as that official file."""
    return {
        "stcn.pth": network_bytes(PROPAGATION),
        "fusion_stcn.pth": network_bytes(FUSION),
        "s2m.pth": network_bytes(S2M),
        "fbrs.pth": save_bytes(fbrs_state_dict()),
    }
