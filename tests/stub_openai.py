"""A tiny OpenAI-style HTTP server on 127.0.0.1 for tests of the client side (an I/O edge).

``reply(path, body) -> (status, json, headers)`` decides every answer; the server records each
request body and how many requests were in flight at once.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[str, dict[str, Any]], tuple[int, Any, dict[str, str]]]
#: answer-token log-probs of a yes/no judge, for replies built with :func:`completion` / :func:`chat`
YES_NO = {"Yes": math.log(0.7), "No": math.log(0.2), " yes": math.log(0.06), " no": math.log(0.04)}


class StubServer:
    def __init__(self, reply: Reply, delay: float = 0.0):
        self.reply = reply
        self.delay = delay
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _handle(self, body: dict[str, Any]) -> None:
                with stub._lock:
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                    stub.bodies.append((self.path, body))
                try:
                    if stub.delay:
                        time.sleep(stub.delay)
                    status, data, headers = stub.reply(self.path, body)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1
                raw = (data if isinstance(data, str) else json.dumps(data)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                self._handle(json.loads(self.rfile.read(n) or b"{}"))

            def do_GET(self) -> None:  # noqa: N802
                self._handle({})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [p for p, _ in self.bodies]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(top: dict[str, float] | None, text: str = "x") -> dict[str, Any]:
    """A completions reply whose first token has the top log-probs ``top`` (None: no logprobs)."""
    lp = None if top is None else {"tokens": [text], "token_logprobs": [max(top.values()) if top else 0.0],
                                   "top_logprobs": [top], "text_offset": [0]}
    return {"choices": [{"text": text, "index": 0, "logprobs": lp, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}


def chat(top: dict[str, float] | None, text: str = "x") -> dict[str, Any]:
    lp = None if top is None else {"content": [{"token": text, "logprob": max(top.values()) if top else 0.0,
                                                "top_logprobs": [{"token": k, "logprob": v} for k, v in top.items()]}]}
    return {"choices": [{"message": {"role": "assistant", "content": text}, "index": 0, "logprobs": lp}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 1}}


MODELS = {"object": "list", "data": [{"id": "stub-model", "object": "model"}]}
