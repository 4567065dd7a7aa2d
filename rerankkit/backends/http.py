"""HTTP for server backends: JSON POSTs with retries and backoff, and bounded concurrency.

Retried: connection failures, timeouts, HTTP 429 and 5xx (``Retry-After`` is honoured). Anything
else fails at once with the server's own message. When a batch fails, the results that did finish
travel on the error (:class:`ServerError.partial`) so a cache can keep them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from .._lazy import require
from ..errors import BackendError

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
_RETRY_STATUS = {408, 409, 425, 429}


class ServerError(BackendError):
    """A server call failed for good. ``status`` is the last HTTP status (None: no reply at all);
    ``partial`` maps the positions of the batch items that did finish to their results."""

    def __init__(self, message: str, status: int | None = None, partial: dict[int, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.partial: dict[int, Any] = dict(partial or {})


class HttpClient:
    """A thread-safe JSON client for one server: ``post(path, body)`` returns the decoded reply."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 4,
                 backoff: float = 0.5, max_backoff: float = 20.0) -> None:
        httpx = require("httpx", "openai", "server backends")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._httpx = httpx
        self._client = httpx.Client(headers=headers, timeout=self.timeout,
                                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        self.retries = 0  # retried attempts so far (all threads)
        self.replies = 0  # successful replies so far
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"

    def post(self, path: str, body: dict[str, Any], retry: bool = True) -> Any:
        return self.request("POST", path, body, retry)

    def get(self, path: str, retry: bool = True) -> Any:
        return self.request("GET", path, None, retry)

    def request(self, method: str, path: str, body: dict[str, Any] | None, retry: bool = True) -> Any:
        """Send one request; retry what is worth retrying; raise :class:`ServerError` otherwise."""
        url = self.url(path)
        attempts = 1 + (self.max_retries if retry else 0)
        outcome = _Outcome()
        for attempt in range(attempts):
            try:
                resp = self._client.request(method, url, json=body)
            except self._httpx.HTTPError as exc:
                outcome = self._failed(exc)
            else:
                outcome = self._read(method, url, resp)
                if outcome.done:
                    return outcome.data
            delay = self._delay(method, url, outcome, attempt, attempts)
            if delay is not None:
                time.sleep(delay)
        raise self._gave_up(method, url, outcome, attempts)

    # -- the retry policy, shared with AsyncHttpClient ------------------------------------------------
    def _failed(self, exc: Exception) -> _Outcome:
        if isinstance(exc, self._httpx.TimeoutException):
            return _Outcome(last=f"no reply within {self.timeout:g} s (timeout)")
        if isinstance(exc, self._httpx.TransportError):
            return _Outcome(last=f"cannot reach the server: {type(exc).__name__}: {exc}")
        raise exc

    def _read(self, method: str, url: str, resp: Any) -> _Outcome:
        """A reply: its data (status < 400), a retryable failure, or a :class:`ServerError` raised at once."""
        status = resp.status_code
        if status < 400:
            try:
                data = resp.json()
            except ValueError:
                raise ServerError(f"{method} {url}: the reply is not JSON: {resp.text[:200]!r}", status) from None
            with self._lock:
                self.replies += 1
            return _Outcome(True, data)
        last = f"HTTP {status}: {server_message(resp)}"
        if status not in _RETRY_STATUS and status < 500:
            raise ServerError(f"{method} {url} failed: {last}", status)
        return _Outcome(last=last, status=status, wait_s=_retry_after(resp.headers.get("retry-after")))

    def _delay(self, method: str, url: str, outcome: _Outcome, attempt: int, attempts: int) -> float | None:
        """Seconds to wait before the next attempt (None: no attempt left)."""
        if attempt + 1 >= attempts:
            return None
        delay = outcome.wait_s if outcome.wait_s is not None else min(self.max_backoff, self.backoff * 2**attempt)
        delay *= 1.0 + 0.1 * random.random()  # a little jitter so parallel retries spread out
        with self._lock:
            self.retries += 1
        log.warning("%s %s: %s; retry %d/%d in %.2f s", method, url, outcome.last, attempt + 1, attempts - 1, delay)
        return delay

    @staticmethod
    def _gave_up(method: str, url: str, outcome: _Outcome, attempts: int) -> ServerError:
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        return ServerError(f"{method} {url} failed{tried}: {outcome.last}", outcome.status)

    def close(self) -> None:
        self._client.close()


class AsyncHttpClient(HttpClient):
    """:class:`HttpClient` for the event loop (``httpx.AsyncClient``): ``await post(path, body)``, the same
    retries and backoff, and at most ``max_concurrency`` requests in flight (an ``asyncio.Semaphore``)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 4,
                 backoff: float = 0.5, max_backoff: float = 20.0, max_concurrency: int = 8) -> None:
        super().__init__(base_url, api_key, timeout, max_retries, backoff, max_backoff)
        self._client.close()
        self._headers = dict(self._client.headers)
        self.max_concurrency = max(1, int(max_concurrency))
        self._loops: weakref.WeakKeyDictionary[Any, tuple[Any, asyncio.Semaphore]] = weakref.WeakKeyDictionary()

    def _for_loop(self) -> tuple[Any, asyncio.Semaphore]:
        """The client and semaphore of the running event loop (an httpx.AsyncClient is bound to one loop)."""
        loop = asyncio.get_running_loop()
        pair = self._loops.get(loop)
        if pair is None or pair[0].is_closed:
            limits = self._httpx.Limits(max_connections=self.max_concurrency,
                                        max_keepalive_connections=self.max_concurrency)
            client = self._httpx.AsyncClient(headers=self._headers, timeout=self.timeout, limits=limits)
            pair = self._loops[loop] = (client, asyncio.Semaphore(self.max_concurrency))
        return pair

    async def post(self, path: str, body: dict[str, Any], retry: bool = True) -> Any:  # type: ignore[override]
        return await self.request("POST", path, body, retry)

    async def get(self, path: str, retry: bool = True) -> Any:  # type: ignore[override]
        return await self.request("GET", path, None, retry)

    async def request(self, method: str, path: str, body: dict[str, Any] | None,  # type: ignore[override]
                      retry: bool = True) -> Any:
        client, gate = self._for_loop()
        url = self.url(path)
        attempts = 1 + (self.max_retries if retry else 0)
        outcome = _Outcome()
        for attempt in range(attempts):
            async with gate:
                try:
                    resp = await client.request(method, url, json=body)
                except self._httpx.HTTPError as exc:
                    outcome = self._failed(exc)
                else:
                    outcome = self._read(method, url, resp)
                    if outcome.done:
                        return outcome.data
            delay = self._delay(method, url, outcome, attempt, attempts)
            if delay is not None:
                await asyncio.sleep(delay)
        raise self._gave_up(method, url, outcome, attempts)

    async def aclose(self) -> None:
        """Close the running loop's client."""
        pair = self._loops.pop(asyncio.get_running_loop(), None)
        if pair is not None:
            await pair[0].aclose()

    def close(self) -> None:
        self._loops.clear()  # clients of finished loops hold no live connections worth a blocking close


@dataclass
class _Outcome:
    done: bool = False
    data: Any = None
    last: str = ""
    status: int | None = None
    wait_s: float | None = None


def server_message(resp: Any) -> str:
    """The error text a server put in its reply (OpenAI ``error.message``, FastAPI ``detail``, ...)."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:500].strip() or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err
        if err:
            return str(err)[:1000]
    return str(data)[:500]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, min(60.0, float(value))) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Post:
    """One request a :data:`Program` asks for."""

    path: str
    body: dict[str, Any]
    retry: bool = True


#: a request sequence written once for both clients: it yields :class:`Post` and receives each reply
#: (a failed request is thrown into it as :class:`ServerError`, so it may catch and recover)
Program = Generator[Post, Any, R]


def drive(program: Program[R], client: HttpClient) -> R:
    """Run ``program`` with blocking requests."""
    reply: Any = None
    error: ServerError | None = None
    while True:
        try:
            call = program.throw(error) if error is not None else program.send(reply)
        except StopIteration as stop:
            return stop.value
        try:
            reply, error = client.post(call.path, call.body, retry=call.retry), None
        except ServerError as exc:
            reply, error = None, exc


async def adrive(program: Program[R], client: AsyncHttpClient) -> R:
    """Run ``program`` on the event loop."""
    reply: Any = None
    error: ServerError | None = None
    while True:
        try:
            call = program.throw(error) if error is not None else program.send(reply)
        except StopIteration as stop:
            return stop.value
        try:
            reply, error = await client.post(call.path, call.body, retry=call.retry), None
        except ServerError as exc:
            reply, error = None, exc


async def gather_partial(coros: Sequence[Any]) -> list[Any]:
    """``asyncio.gather`` with :func:`run_bounded`'s failure contract: the first server failure is raised
    as a :class:`ServerError` whose ``partial`` holds every result that finished."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    failed = next((r for r in results if isinstance(r, BaseException)), None)
    if failed is None:
        return list(results)
    if not isinstance(failed, BackendError):
        raise failed
    ok = {i: r for i, r in enumerate(results) if not isinstance(r, BaseException)}
    raise _with_partial(failed, ok) from failed


def run_bounded(fn: Callable[[T], R], items: Sequence[T], max_concurrency: int) -> list[R]:
    """``[fn(x) for x in items]`` with at most ``max_concurrency`` calls in flight, in order.

    On the first failure the calls not yet started are cancelled, the running ones finish, and the
    error is raised as a :class:`ServerError` whose ``partial`` holds every result that finished.
    """
    if not items:
        return []
    if max_concurrency <= 1 or len(items) == 1:
        done: dict[int, R] = {}
        for i, x in enumerate(items):
            try:
                done[i] = fn(x)
            except BackendError as exc:
                raise _with_partial(exc, done) from exc
        return [done[i] for i in range(len(items))]
    with ThreadPoolExecutor(max_workers=min(max_concurrency, len(items)), thread_name_prefix="rerankkit-http") as pool:
        futures: list[Future[R]] = [pool.submit(fn, x) for x in items]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f.done() and not f.cancelled() and f.exception() is not None), None)
        if failed is not None:
            for f in futures:
                f.cancel()
            wait(futures)
            ok = {i: f.result() for i, f in enumerate(futures)
                  if f.done() and not f.cancelled() and f.exception() is None}
            exc = failed.exception()
            if not isinstance(exc, BackendError):
                raise exc  # a bug, not a server failure: show it as it is
            raise _with_partial(exc, ok) from exc
        return [f.result() for f in futures]


def _with_partial(exc: BackendError, done: dict[int, Any]) -> ServerError:
    return ServerError(str(exc), getattr(exc, "status", None), done)
