"""The OpenRouter client: chat completions (streamed or not) and the model list, over aiohttp.

Works with any OpenAI-compatible upstream (a base URL and an optional key). The aiohttp
session is injectable: pass the process's shared one, or a test server's, and the client
never closes what it did not open.

Retries (tenacity) cover only what may safely be sent again: 408, 429, 502, 503, 524, 529
and connection failures, never 400/401/402/403. ``Retry-After`` is honoured; when it asks
for longer than the retry time left, the error is raised at once. A stream is retried only
until its first chunk arrived, since nothing of it has reached the caller before that.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from openrouter_gateway.errors import (
    OpenRouterError,
    UpstreamConnectionError,
    error_from_response,
)
from openrouter_gateway.streaming import SSEEvent, StreamAccumulator, iter_sse, parse_chunk

log = logging.getLogger("openrouter_gateway")
T = TypeVar("T")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None


@dataclass(frozen=True)
class ChatResult:
    """A completion's raw JSON body with how long it took."""

    body: dict[str, Any]
    status: int
    latency_s: float
    attempts: int = 1
    generation_header: str | None = None

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def generation_id(self) -> str | None:
        return self.generation_header or self.body.get("id")

    @property
    def usage(self) -> Usage:
        u = self.body.get("usage") or {}
        prompt, completion = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
        cost = u.get("cost")
        return Usage(
            prompt,
            completion,
            int(u.get("total_tokens") or prompt + completion),
            float(cost) if cost is not None else None,
        )


@dataclass(frozen=True)
class RetryPolicy:
    """How failed calls are retried: attempts in all, the time they may take together, and
    the exponential backoff (with jitter) used when the upstream gives no Retry-After."""

    max_attempts: int = 3
    max_total_s: float = 30.0
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, OpenRouterError) and exc.retry_after is not None:
            return exc.retry_after
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (state.attempt_number - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


NO_RETRY = RetryPolicy(max_attempts=1)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, OpenRouterError) and exc.retryable


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "upstream call failed (attempt %d), retrying in %.2fs: %s",
        state.attempt_number,
        state.upcoming_sleep,
        exc,
    )


class ChatStream:
    """A streamed completion in progress. Iterate it for its :class:`SSEEvent` s (keep-alive
    comments included, ``[DONE]`` not); :attr:`acc` assembles the completion as it goes.
    A mid-stream error or a dropped connection raises the typed error while iterating."""

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        events: AsyncIterator[SSEEvent],
        pending: list[SSEEvent],
        started: float,
        attempts: int,
    ) -> None:
        self.resp = resp
        self.status = resp.status
        self.generation_header = resp.headers.get("X-Generation-Id")
        self.acc = StreamAccumulator()
        self.attempts = attempts
        self.started = started
        self.first_token_s: float | None = None
        self.latency_s: float | None = None
        self._events = events
        self._pending = pending
        self._done = False

    @property
    def generation_id(self) -> str | None:
        return self.generation_header or self.acc.id

    @property
    def finished(self) -> bool:
        """True once ``[DONE]`` (or the end of the body) was reached."""
        return self._done

    def take(self, ev: SSEEvent) -> SSEEvent:
        """Fold a data event into the accumulator (raising a mid-stream error)."""
        if ev.data is not None:
            chunk = parse_chunk(ev.data)
            if self.first_token_s is None and _has_output(chunk):
                self.first_token_s = time.perf_counter() - self.started
            self.acc.add(chunk)
        return ev

    def __aiter__(self) -> AsyncIterator[SSEEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[SSEEvent]:
        while self._pending:  # read (and folded in) while the stream was being opened
            yield self._pending.pop(0)
        while (ev := await self._read()) is not None:
            yield ev

    async def _read(self) -> SSEEvent | None:
        """The next event, folded in; None at the end."""
        if self._done:
            return None
        try:
            ev = await anext(self._events)
        except StopAsyncIteration:
            ev = None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamConnectionError(
                f"the stream broke off: {exc.__class__.__name__}", mid_stream=True
            ) from exc
        if ev is None or ev.is_done:
            self._finish()
            return None
        return self.take(ev)

    async def prefetch(self) -> None:
        """Read up to the first data chunk (kept for iteration)."""
        while (ev := await self._read()) is not None:
            self._pending.append(ev)
            if ev.data is not None:
                return

    def _finish(self) -> None:
        self._done = True
        self.latency_s = time.perf_counter() - self.started

    async def collect(self) -> dict[str, Any]:
        """Read to the end; the assembled ``chat.completion`` body."""
        async for _ in self:
            pass
        return self.acc.result()

    async def aclose(self) -> None:
        self.resp.release()
        self.resp.close()


def _has_output(chunk: dict[str, Any]) -> bool:
    for c in chunk.get("choices") or []:
        delta = c.get("delta") if isinstance(c, dict) else None
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
            return True
    return False


class OpenRouterClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        app_url: str = "https://github.com/refactorbot/refactorbot",
        app_title: str = "RefactorBot",
        timeout_s: float = 120.0,
        retry: RetryPolicy = NO_RETRY,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry = retry
        self._owns_session = session is None
        self._session = session
        self._headers = {
            "HTTP-Referer": app_url,
            "X-OpenRouter-Title": app_title,
            "X-Title": app_title,
            "Content-Type": "application/json",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
            self._owns_session = True
        return self._session

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> OpenRouterClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _retrying(self, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Run ``attempt(n)`` under the retry policy; the last error is raised as is."""
        policy = self.retry

        async def counted(n: int) -> T:
            try:
                return await attempt(n)
            except OpenRouterError as exc:
                exc.attempts = n
                raise

        if policy.max_attempts <= 1:
            return await counted(1)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_total_s),
            wait=policy.wait,
            retry=retry_if_exception(_retryable),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for try_ in retrying:
            with try_:
                return await counted(try_.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _request(
        self, method: str, path: str, data: bytes | None, extra_headers: dict[str, str] | None
    ) -> aiohttp.ClientResponse:
        """Send; an error status becomes its typed error (the body read and released)."""
        try:
            resp = await self.session.request(
                method,
                self.base_url + path,
                data=data,
                headers={**self._headers, **(extra_headers or {})},
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            )
            if resp.status >= 400:
                async with resp:
                    raw = await resp.read()
                raise error_from_response(resp.status, raw, dict(resp.headers))
            return resp
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamConnectionError(
                f"no answer from {self.base_url}: {exc.__class__.__name__}"
            ) from exc

    async def _send(
        self, method: str, path: str, data: bytes | None, extra_headers: dict[str, str] | None
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        resp = await self._request(method, path, data, extra_headers)
        try:
            async with resp:
                return resp, await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamConnectionError(
                f"the answer from {self.base_url} broke off: {exc.__class__.__name__}"
            ) from exc

    async def chat_completions(
        self, payload: dict[str, Any], *, extra_headers: dict[str, str] | None = None
    ) -> ChatResult:
        """POST /chat/completions with the payload passed through unchanged.

        With ``stream: true`` the stream is read to its end and assembled, so the result is
        the same either way; use :meth:`stream_chat_completions` to see it as it comes."""
        if payload.get("stream"):
            started = time.perf_counter()
            async with self.stream_chat_completions(payload, extra_headers=extra_headers) as st:
                body = await st.collect()
            return ChatResult(
                body=body,
                status=st.status,
                latency_s=time.perf_counter() - started,
                attempts=st.attempts,
                generation_header=st.generation_header,
            )
        data = json.dumps(payload).encode()

        async def attempt(n: int) -> ChatResult:
            started = time.perf_counter()
            resp, raw = await self._send("POST", "/chat/completions", data, extra_headers)
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise UpstreamConnectionError(
                    "upstream answered with something that is not JSON"
                ) from exc
            if not isinstance(body, dict):
                raise UpstreamConnectionError("upstream answered with JSON that is not an object")
            return ChatResult(
                body=body,
                status=resp.status,
                latency_s=time.perf_counter() - started,
                attempts=n,
                generation_header=resp.headers.get("X-Generation-Id"),
            )

        return await self._retrying(attempt)

    def stream_chat_completions(
        self, payload: dict[str, Any], *, extra_headers: dict[str, str] | None = None
    ) -> _StreamContext:
        """``async with client.stream_chat_completions(p) as stream: async for ev in stream``.

        Entering sends the request (with retries) and waits for the first chunk, so an error
        before the stream started raises here, typed, with the real status."""
        return _StreamContext(self, {**payload, "stream": True}, extra_headers)

    async def _open_stream(
        self, payload: dict[str, Any], extra_headers: dict[str, str] | None
    ) -> ChatStream:
        data = json.dumps(payload).encode()
        headers = {"Accept": "text/event-stream", **(extra_headers or {})}

        async def attempt(n: int) -> ChatStream:
            started = time.perf_counter()
            resp = await self._request("POST", "/chat/completions", data, headers)
            if "text/event-stream" not in resp.headers.get("Content-Type", ""):
                async with resp:  # an upstream that ignored stream=true
                    raw = await resp.read()
                raise UpstreamConnectionError(
                    f"asked for a stream, got {resp.headers.get('Content-Type')!r}: {raw[:120]!r}"
                )
            stream = ChatStream(resp, iter_sse(resp.content.iter_any()), [], started, n)
            try:
                # Up to the first data chunk nothing has been passed on: still retryable.
                await stream.prefetch()
            except OpenRouterError as exc:
                await stream.aclose()
                exc.mid_stream = False
                raise
            except BaseException:
                await stream.aclose()
                raise
            return stream

        return await self._retrying(attempt)

    async def list_models(self) -> list[dict[str, Any]]:
        """GET /models: the upstream's catalog ``data`` list."""

        async def attempt(n: int) -> list[dict[str, Any]]:
            _, raw = await self._send("GET", "/models", None, None)
            data: list[dict[str, Any]] = json.loads(raw)["data"]
            return data

        return await self._retrying(attempt)


class _StreamContext:
    def __init__(
        self,
        client: OpenRouterClient,
        payload: dict[str, Any],
        extra_headers: dict[str, str] | None,
    ) -> None:
        self._client, self._payload, self._headers = client, payload, extra_headers
        self._stream: ChatStream | None = None

    async def __aenter__(self) -> ChatStream:
        self._stream = await self._client._open_stream(self._payload, self._headers)
        return self._stream

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            await self._stream.aclose()
