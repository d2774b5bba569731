"""Server-Sent Events from a streamed chat completion, and the completion they add up to.

OpenRouter (like OpenAI) streams ``data: {chunk}`` events separated by blank lines. Along
the way it may send comment lines (``: OPENROUTER PROCESSING``) to keep the connection
open; the last chunk with a ``usage`` object has ``choices: []``; ``data: [DONE]`` ends the
stream. An error after the stream started cannot change the HTTP status (already 200), so
it arrives as a chunk with a top-level ``error`` object and ``finish_reason: "error"``.

:func:`iter_sse` turns bytes into :class:`SSEEvent` s; :class:`StreamAccumulator` folds
chunks into one ``chat.completion`` body (content, tool-call fragments joined by index,
usage) and raises the typed error for an error chunk.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from openrouter_gateway.errors import OpenRouterError, StreamError, error_class_for

DONE = "[DONE]"


@dataclass(frozen=True)
class SSEEvent:
    """One event: ``data`` (joined data lines) or a ``comment`` (keep-alive)."""

    data: str | None = None
    comment: str | None = None
    event: str | None = None

    @property
    def is_done(self) -> bool:
        return self.data is not None and self.data.strip() == DONE


class SSEDecoder:
    """Incremental SSE decoding: feed lines (without line endings), get events."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event: str | None = None

    def feed_line(self, line: str) -> SSEEvent | None:
        if line == "":
            if not self._data:
                self._event = None
                return None
            ev = SSEEvent(data="\n".join(self._data), event=self._event)
            self._data, self._event = [], None
            return ev
        if line.startswith(":"):
            return SSEEvent(comment=line[1:].strip())
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # id and retry fields (and unknown ones) carry nothing a completion needs
        return None

    def flush(self) -> SSEEvent | None:
        """The event left when the stream ends without a final blank line."""
        return self.feed_line("")


async def iter_sse(
    chunks: AsyncIterable[bytes], *, max_line_bytes: int = 8 * 1024 * 1024
) -> AsyncIterator[SSEEvent]:
    """Events from bytes as they arrive, split anywhere (``resp.content.iter_any()``).

    Lines end with LF, CRLF or CR; a line longer than ``max_line_bytes`` is a StreamError
    rather than unbounded memory."""
    decoder = SSEDecoder()
    buf = b""
    async for piece in chunks:
        buf += piece
        while True:
            cut = _line_end(buf)
            if cut is None:
                break
            end, width = cut
            if end == len(buf) - 1 and buf[end : end + 1] == b"\r":
                break  # a CR at the end may be the first half of a CRLF
            line, buf = buf[:end], buf[end + width :]
            ev = decoder.feed_line(line.decode("utf-8", errors="replace"))
            if ev is not None:
                yield ev
        if len(buf) > max_line_bytes:
            raise StreamError(f"an SSE line is over {max_line_bytes} bytes", status_code=502)
    if buf:
        ev = decoder.feed_line(buf.rstrip(b"\r").decode("utf-8", errors="replace"))
        if ev is not None:
            yield ev
    last = decoder.flush()
    if last is not None:
        yield last


def _line_end(buf: bytes) -> tuple[int, int] | None:
    """Where the first line of ``buf`` ends and how wide its line break is."""
    lf, cr = buf.find(b"\n"), buf.find(b"\r")
    if cr == -1 or (lf != -1 and lf < cr):
        return None if lf == -1 else (lf, 1)
    if buf[cr + 1 : cr + 2] == b"\n":
        return cr, 2
    return cr, 1


def chunk_error(chunk: dict[str, Any]) -> OpenRouterError | None:
    """The typed error a chunk carries (a mid-stream error), or None."""
    err = chunk.get("error")
    choices = chunk.get("choices") or []
    errored = any(isinstance(c, dict) and c.get("finish_reason") == "error" for c in choices)
    if not isinstance(err, dict) and not errored:
        return None
    err = err if isinstance(err, dict) else {}
    code = err.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else 502
    cls = error_class_for(status)
    return cls(
        f"error during the stream: {err.get('message') or 'the upstream reported an error'}",
        status_code=status,
        code=code,
        metadata=dict(err.get("metadata") or {}),
        mid_stream=True,
    )


@dataclass
class _ToolCall:
    id: str | None = None
    type: str = "function"
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamAccumulator:
    """Folds streamed chunks into the body a non-streamed call would have returned."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.created: int | None = None
        self.usage: dict[str, Any] | None = None
        self.chunks = 0
        self._choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        """Take one chunk; raises the typed error if it is an error chunk."""
        self.chunks += 1
        self.id = self.id or chunk.get("id")
        self.model = chunk.get("model") or self.model
        self.provider = chunk.get("provider") or self.provider
        self.created = self.created or chunk.get("created")
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        error = chunk_error(chunk)
        if error is not None:
            raise error
        for c in chunk.get("choices") or []:
            if not isinstance(c, dict):
                continue
            index = c.get("index", 0) if isinstance(c.get("index", 0), int) else 0
            st = self._choices.setdefault(
                index, {"role": "assistant", "content": [], "tools": {}, "finish": None}
            )
            delta = c.get("delta") or {}
            if delta.get("role"):
                st["role"] = delta["role"]
            if isinstance(delta.get("content"), str):
                st["content"].append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                if not isinstance(tc, dict):
                    continue
                slot = tc.get("index", len(st["tools"]))
                call = st["tools"].setdefault(slot, _ToolCall())
                call.id = tc.get("id") or call.id
                call.type = tc.get("type") or call.type
                fn = tc.get("function") or {}
                if fn.get("name"):
                    call.name += fn["name"]
                if isinstance(fn.get("arguments"), str):
                    call.arguments.append(fn["arguments"])
            if c.get("finish_reason"):
                st["finish"] = c["finish_reason"]

    @property
    def text(self) -> str:
        return "".join("".join(st["content"]) for _, st in sorted(self._choices.items()))

    def result(self) -> dict[str, Any]:
        """The ``chat.completion`` body: what a non-streamed call returns."""
        choices = []
        for index, st in sorted(self._choices.items()):
            message: dict[str, Any] = {"role": st["role"], "content": "".join(st["content"])}
            if st["tools"]:
                message["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": call.type,
                        "function": {"name": call.name, "arguments": "".join(call.arguments)},
                    }
                    for _, call in sorted(st["tools"].items())
                ]
                message["content"] = message["content"] or None
            choices.append({"index": index, "message": message, "finish_reason": st["finish"]})
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.provider:
            body["provider"] = self.provider
        if self.usage is not None:
            body["usage"] = self.usage
        return body


def parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise StreamError(f"a stream event is not JSON: {data[:120]!r}", status_code=502) from exc
    if not isinstance(chunk, dict):
        raise StreamError("a stream event is not a JSON object", status_code=502)
    return chunk
