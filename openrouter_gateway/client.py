"""The OpenRouter client: chat completions and the model list, over aiohttp.

Works with any OpenAI-compatible upstream (a base URL and an optional key). The aiohttp
session is injectable: pass the process's shared one, or a test server's, and the client
never closes what it did not open.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from openrouter_gateway.errors import (
    StreamingNotSupportedError,
    UpstreamConnectionError,
    error_from_response,
)


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

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def generation_id(self) -> str | None:
        return self.body.get("id")

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


class OpenRouterClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        app_url: str = "https://github.com/refactorbot/refactorbot",
        app_title: str = "RefactorBot",
        timeout_s: float = 120.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
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

    async def _send(
        self, method: str, path: str, data: bytes | None, extra_headers: dict[str, str] | None
    ) -> tuple[int, bytes]:
        headers = {**self._headers, **(extra_headers or {})}
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise error_from_response(resp.status, raw, dict(resp.headers))
                return resp.status, raw
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise UpstreamConnectionError(
                f"no answer from {self.base_url}: {exc.__class__.__name__}"
            ) from exc

    async def chat_completions(
        self, payload: dict[str, Any], *, extra_headers: dict[str, str] | None = None
    ) -> ChatResult:
        """POST /chat/completions with the payload passed through unchanged."""
        if payload.get("stream"):
            raise StreamingNotSupportedError("streaming is not supported by this client yet")
        started = time.perf_counter()
        status, raw = await self._send(
            "POST", "/chat/completions", json.dumps(payload).encode(), extra_headers
        )
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise UpstreamConnectionError(
                "upstream answered with something that is not JSON"
            ) from exc
        return ChatResult(body=body, status=status, latency_s=time.perf_counter() - started)

    async def list_models(self) -> list[dict[str, Any]]:
        """GET /models: the upstream's catalog ``data`` list."""
        _, raw = await self._send("GET", "/models", None, None)
        data: list[dict[str, Any]] = json.loads(raw)["data"]
        return data
