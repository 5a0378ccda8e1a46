"""The fake chain (:mod:`wallets.fake_chain`) served over real HTTP on loopback, for the
detection tests and the benchmark: a uvicorn server in a thread of its own, which a test can
stop (connection refused) and start again on the same port."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp


class LiveServer:
    """``app`` on ``127.0.0.1:port``; :meth:`stop` and :meth:`start` again at will."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.02)
        assert server.started, "the fake chain server did not start"
        self._server, self._thread = server, thread

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None


@contextmanager
def serving(app: ASGIApp) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    try:
        yield server
    finally:
        if server._server is not None:
            server.stop()
