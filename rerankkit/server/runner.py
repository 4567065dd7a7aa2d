"""Running the app with uvicorn: in the foreground (the CLI) or in a background thread (tests, notebooks)."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading
import time
from typing import Any

from .._lazy import require
from ..errors import BackendError

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uvicorn_config(app: Any, host: str, port: int, graceful_timeout_s: float = 60.0,
                   limit_concurrency: int | None = None, log_level: str = "warning") -> Any:
    uvicorn = require("uvicorn", "server", "the rerank server")
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                          timeout_graceful_shutdown=int(graceful_timeout_s), limit_concurrency=limit_concurrency,
                          server_header=False)


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> int | None:
    """Serve ``app`` until SIGINT/SIGTERM; requests in flight finish before it returns.

    Returns the signal that stopped the server (None if it stopped otherwise).
    """
    uvicorn = require("uvicorn", "server", "the rerank server")
    if not is_loopback(host):
        log.warning("listening on %s: the server is reachable from other machines%s", host,
                    "" if app.state.config.api_key else " and has NO API key")
    server = uvicorn.Server(uvicorn_config(app, host, port, **kwargs))
    if threading.current_thread() is not threading.main_thread():
        server.run()
        return None
    # uvicorn handles the signals while it runs, then re-raises them once it has shut down gracefully;
    # these handlers receive that re-raised signal, so a stop by signal ends with a normal return
    received: list[int] = []
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda sig, frame: received.append(sig)) for s in stops}
    try:
        server.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return received[0] if received else None


class ServerThread:
    """``with ServerThread(app) as s: httpx.get(s.url + "/health")``: a server on a free loopback port."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **kwargs: Any):
        uvicorn = require("uvicorn", "server", "the rerank server")
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = host, self._sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn_config(app, host, self.port, **kwargs))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]},
                                        name="rerankkit-server", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            self.stop(5.0)
            raise BackendError(f"the rerank server did not start within {timeout} s")
        return self

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop taking requests, finish those in flight, shut down."""
        self.server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
