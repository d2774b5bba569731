"""Typed client other services use to call the providers slice.

Completions come back as :class:`~services.providers.schemas.ChatCompletion`, validated
straight from the response bytes (one parse, in pydantic-core); a streamed answer is
read chunk by chunk as :class:`~services.providers.schemas.ChatCompletionChunk` and
assembled into the same model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import ValidationError

from openrouter_gateway import OpenRouterError
from openrouter_gateway.streaming import chunk_error, iter_sse
from services.kit.client import SliceClient
from services.kit.errors import UpstreamError
from services.providers.schemas import (
    API_KEY_ID_HEADER,
    SESSION_HEADER,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    CompletionMessage,
    CompletionUsage,
    FunctionCall,
    ToolCall,
    UsagesPublic,
)


class ProvidersClient(SliceClient):
    service = "providers"
    default_timeout_s = 150.0  # an LLM call may take as long as the slice allows a request

    async def chat_completions(
        self,
        payload: dict[str, Any],
        *,
        session_id: str | None = None,
        api_key_id: str | None = None,
    ) -> ChatCompletion:
        """An OpenAI-shaped completion; never retried (it costs money)."""
        raw = await self.request(
            "POST",
            "/v1/chat/completions",
            json_body=payload,
            headers=_headers(session_id, api_key_id),
            decode=False,
        )
        try:
            return ChatCompletion.model_validate_json(raw)
        except ValidationError as exc:
            raise UpstreamError(
                f"the LLM's answer is not a chat completion: {_first(exc)}"
            ) from exc

    async def stream_chat_completions(
        self,
        payload: dict[str, Any],
        *,
        on_text: Callable[[str], Awaitable[None]],
        session_id: str | None = None,
        api_key_id: str | None = None,
    ) -> ChatCompletion:
        """Stream a completion, handing each piece of text to ``on_text`` as it comes, and
        return the assembled completion. A mid-stream error raises as an UpstreamError."""
        built = CompletionBuilder()
        async with self.stream(
            "POST",
            "/v1/chat/completions",
            json_body={**payload, "stream": True},
            headers=_headers(session_id, api_key_id),
        ) as resp:
            try:
                async for ev in iter_sse(resp.content.iter_any()):
                    if ev.data is None:
                        continue
                    if ev.is_done:
                        break
                    try:
                        chunk = ChatCompletionChunk.model_validate_json(ev.data)
                    except ValidationError as exc:
                        raise UpstreamError(
                            f"LLM stream failed: a chunk is not a completion chunk: {_first(exc)}"
                        ) from exc
                    text = built.add(chunk)
                    if text:
                        await on_text(text)
            except OpenRouterError as exc:
                raise UpstreamError(f"LLM stream failed: {exc.message}") from exc
            except aiohttp.ClientPayloadError as exc:
                raise UpstreamError("the LLM stream broke off") from exc
        return built.result()

    async def usage(self, *, session_id: str | None = None, limit: int = 100) -> UsagesPublic:
        params: dict[str, Any] = {"limit": limit}
        if session_id:
            params["session_id"] = session_id
        return await self.get_model(UsagesPublic, "/v1/usage", params=params)


def _headers(session_id: str | None, api_key_id: str | None) -> dict[str, str]:
    return {k: v for k, v in ((SESSION_HEADER, session_id), (API_KEY_ID_HEADER, api_key_id)) if v}


def _first(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"


@dataclass
class _Building:
    role: str = "assistant"
    text: list[str] = field(default_factory=list)
    calls: dict[int, tuple[list[str], list[str], dict[str, Any]]] = field(default_factory=dict)
    finish_reason: str | None = None


class CompletionBuilder:
    """Folds typed stream chunks into the completion a non-streamed call would return:
    text joined per choice, tool-call fragments joined by their index, the last usage."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.created: int | None = None
        self.usage: CompletionUsage | None = None
        self._choices: dict[int, _Building] = {}

    def add(self, chunk: ChatCompletionChunk) -> str:
        """Take one chunk and return its new text; raises the typed error of an error
        chunk (an OpenRouterError, as the gateway library does)."""
        self.id = self.id or chunk.id
        self.model = chunk.model or self.model
        self.provider = chunk.provider or self.provider
        self.created = self.created or chunk.created
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.error is not None or any(c.finish_reason == "error" for c in chunk.choices):
            error = chunk_error(chunk.model_dump(exclude_none=True))
            if error is not None:
                raise error
        new = ""
        for c in chunk.choices:
            st = self._choices.get(c.index)
            if st is None:
                st = self._choices[c.index] = _Building()
            delta = c.delta
            if delta.role:
                st.role = delta.role
            if delta.content:
                st.text.append(delta.content)
                new += delta.content
            for tc in delta.tool_calls or ():
                slot = len(st.calls) if tc.index is None else tc.index
                names, args, meta = st.calls.setdefault(slot, ([], [], {}))
                if tc.id:
                    meta["id"] = tc.id
                if tc.type:
                    meta["type"] = tc.type
                if tc.function is not None:
                    if tc.function.name:
                        names.append(tc.function.name)
                    if tc.function.arguments:
                        args.append(tc.function.arguments)
            if c.finish_reason:
                st.finish_reason = c.finish_reason
        return new

    def result(self) -> ChatCompletion:
        """The assembled ``chat.completion``."""
        choices = []
        for index, st in sorted(self._choices.items()):
            calls = [
                ToolCall(
                    id=meta.get("id"),
                    type=meta.get("type") or "function",
                    function=FunctionCall(name="".join(names), arguments="".join(args)),
                )
                for _, (names, args, meta) in sorted(st.calls.items())
            ]
            text = "".join(st.text)
            message = CompletionMessage(
                role=st.role, content=text or (None if calls else ""), tool_calls=calls
            )
            choices.append(Choice(index=index, message=message, finish_reason=st.finish_reason))
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            provider=self.provider,
            choices=choices,
            usage=self.usage or CompletionUsage(),
        )
