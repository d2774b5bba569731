"""The built-in tools: files in the workspace, exec of allowed programs, web_fetch, and
the agent's memory (remember, recall) through the memory slice.

Each tool is a :class:`ToolSpec`: an OpenAI-style JSON Schema for its arguments (checked
before it runs, ``additionalProperties: false``), a permission class, default limits, and
an async ``run(call, args)`` returning a JSON-able result. Failures raise
:class:`~services.tools.workspace.ToolFailure` with a status and a code.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from services.memory.client import MemoryClient
from services.memory.schemas import MemoryCreate
from services.tools.config import ToolsSettings
from services.tools.sandbox import Runner
from services.tools.web import WebFetcher
from services.tools.workspace import PathConflict, PathNotFound, TooLarge, ToolFailure, Workspace

Permission = Literal["read", "write", "execute", "network", "memory"]


@dataclass
class CallContext:
    """What one tool call runs with: its workspace, limits and the shared helpers, and the
    turn it is part of (from the caller, never from the model's arguments)."""

    workspace: Workspace
    settings: ToolsSettings
    output_cap: int
    timeout_s: float
    runner: Runner
    fetcher: WebFetcher
    memory: MemoryClient | None = None
    owner: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    permission: Permission
    run: Callable[[CallContext, dict[str, Any]], Awaitable[dict[str, Any]]]
    version: str = "1.0.0"


def cap_text(text: str, cap: int) -> tuple[str, bool]:
    """``text`` cut to ``cap`` UTF-8 bytes, with a visible marker when it was cut."""
    raw = text.encode("utf-8")
    if len(raw) <= cap:
        return text, False
    kept = raw[:cap].decode("utf-8", errors="ignore")
    return f"{kept}\n[... output truncated: {len(raw) - cap} more bytes]", True


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


PATH = {"type": "string", "minLength": 1, "maxLength": 4096, "description": "Relative path"}


# -- read_file ----------------------------------------------------------------------------


async def read_file(call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    ws, cap = call.workspace, call.settings.max_read_bytes
    loc = ws.locate(args["path"])
    data, size = await anyio.to_thread.run_sync(ws.read_regular, loc, cap)
    text = _decode(data)
    lines = text.splitlines(keepends=True)
    offset, limit = args.get("offset", 1), args.get("limit")
    chosen = lines[offset - 1 : (offset - 1 + limit) if limit else None]
    content, truncated = cap_text("".join(chosen), call.output_cap)
    return {
        "path": loc.display,
        "content": content,
        "size_bytes": size,
        "first_line": offset,
        "lines_returned": len(chosen),
        "truncated": truncated or size > cap,
        "file_truncated_at_bytes": cap if size > cap else None,
    }


# -- write_file / edit_file ---------------------------------------------------------------


async def write_file(call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    ws = call.workspace
    loc = ws.locate(args["path"])
    data = args["content"].encode("utf-8")
    if len(data) > call.settings.max_write_bytes:
        raise TooLarge(
            f"content is {len(data)} bytes; the limit is {call.settings.max_write_bytes}"
        )
    existed = await anyio.to_thread.run_sync(
        lambda: ws.write_atomic(loc, data, create_dirs=args.get("create_dirs", True))
    )
    return {"path": loc.display, "bytes_written": len(data), "created": not existed}


async def edit_file(call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    ws, cap = call.workspace, call.settings.max_write_bytes
    loc = ws.locate(args["path"])
    old, new = args["old_text"], args["new_text"]
    if old == new:
        raise ToolFailure("old_text and new_text are the same; nothing to change")

    def edit() -> int:
        data, size = ws.read_regular(loc, cap + 1)
        if size > cap:
            raise TooLarge(f"{loc.display!r} is {size} bytes; edit_file handles up to {cap}")
        text = data.decode("utf-8")  # a binary file is not edited as text
        count = text.count(old)
        if count == 0:
            raise PathNotFound(f"old_text was not found in {loc.display!r}")
        if count > 1 and not args.get("replace_all", False):
            raise PathConflict(
                f"old_text occurs {count} times in {loc.display!r}; include more context "
                "to make it unique, or set replace_all"
            )
        updated = text.replace(old, new).encode("utf-8")
        if len(updated) > cap:
            raise TooLarge(f"the edited file would be {len(updated)} bytes; the limit is {cap}")
        ws.write_atomic(loc, updated, create_dirs=False)
        return count

    try:
        count = await anyio.to_thread.run_sync(edit)
    except UnicodeDecodeError:
        raise ToolFailure(f"{loc.display!r} is not UTF-8 text") from None
    return {"path": loc.display, "replacements": count}


# -- list_dir / search_files --------------------------------------------------------------


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


async def list_dir(call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    ws, most = call.workspace, call.settings.max_list_entries
    loc = ws.locate(args.get("path", "."))
    parts = (*loc.parents, loc.name) if loc.name else ()

    def listing() -> tuple[list[dict[str, Any]], int]:
        with ws.directory(parts) as fd:
            names = sorted(os.listdir(fd))
            out = []
            for name in names[:most]:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we looked
                out.append({"name": name, "type": _kind(st.st_mode), "size": st.st_size})
            return out, len(names)

    entries, total = await anyio.to_thread.run_sync(listing)
    return {"path": loc.display, "entries": entries, "total": total, "truncated": total > most}


async def search_files(call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    ws, s = call.workspace, call.settings
    loc = ws.locate(args.get("path", "."))
    parts = (*loc.parents, loc.name) if loc.name else ()
    pattern = args.get("glob", "*")
    text = args.get("text")
    flags = 0 if args.get("case_sensitive", False) else re.IGNORECASE
    needle = re.compile(re.escape(text), flags) if text else None
    most = min(args.get("max_results", s.max_search_results), s.max_search_results)

    def search() -> tuple[list[dict[str, Any]], int, bool]:
        found: list[dict[str, Any]] = []
        seen = 0
        with ws.directory(parts) as top:
            for dirpath, dirnames, filenames, dfd in os.fwalk(
                ".", dir_fd=top, follow_symlinks=False
            ):
                dirnames.sort()
                for name in sorted(filenames):
                    rel = os.path.normpath(os.path.join(dirpath, name))
                    if not fnmatch.fnmatch(rel, pattern) and not fnmatch.fnmatch(name, pattern):
                        continue
                    seen += 1
                    if seen > s.max_search_files:
                        return found, seen - 1, True
                    if needle is None:
                        found.append({"path": rel})
                    else:
                        _grep(dfd, name, rel, needle, s.max_read_bytes, found, most)
                    if len(found) >= most:
                        return found, seen, True
        return found, seen, False

    results, scanned, truncated = await anyio.to_thread.run_sync(search)
    return {"matches": results, "files_scanned": scanned, "truncated": truncated}


def _grep(
    dfd: int,
    name: str,
    rel: str,
    needle: re.Pattern[str],
    max_bytes: int,
    found: list[dict[str, Any]],
    most: int,
) -> None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return  # a link or something unreadable: not searched
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        data = os.read(fd, max_bytes)
    finally:
        os.close(fd)
    if b"\x00" in data[:8192]:
        return  # binary
    for number, line in enumerate(_decode(data).splitlines(), start=1):
        if needle.search(line):
            found.append({"path": rel, "line": number, "text": line[:500]})
            if len(found) >= most:
                return


# -- exec / web_fetch ---------------------------------------------------------------------


async def exec_program(call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    timeout = min(args.get("timeout_s", call.timeout_s), call.timeout_s)
    result = await call.runner.run(
        args["argv"], workspace=call.workspace, timeout_s=timeout, output_cap=call.output_cap
    )
    return result


async def web_fetch(call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    most = min(args.get("max_bytes", call.settings.web_fetch_max_bytes), call.output_cap)
    return await call.fetcher.fetch(args["url"], max_bytes=most, timeout_s=call.timeout_s)


# -- remember / recall --------------------------------------------------------------------


class MemoryUnavailable(ToolFailure):
    status, code = 503, "memory_unavailable"


def _memory_of(call: CallContext) -> MemoryClient:
    """The memory client, once the call says whose memories these are."""
    if call.memory is None:
        raise MemoryUnavailable("this tools service has no memory slice to call")
    if call.owner is None and call.session_id is None:
        # Without either, a search would span every user's memories: refused.
        raise ToolFailure("a memory tool needs the turn's owner or session_id")
    return call.memory


async def remember(call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    memory = _memory_of(call)
    # The owner's (user) memories when the turn has one, else the conversation's.
    scope, subject = ("user", call.owner) if call.owner else ("session", call.session_id)
    made = await memory.remember(
        MemoryCreate(
            scope=scope,
            subject=subject or "",
            text=args["text"],
            importance=args.get("importance", 0.6),
            tags=args.get("tags", []),
            source_session=call.session_id,
        ),
        owner=call.owner,
    )
    return {"remembered": made.text, "id": made.id, "mentions": made.mentions}


async def recall(call: CallContext, args: dict[str, Any]) -> dict[str, Any]:
    memory = _memory_of(call)
    found = await memory.search(
        args["query"],
        owner=call.owner,
        user=call.owner,
        session_id=call.session_id,
        limit=args.get("limit", 5),
    )
    return {"memories": [{"text": h.memory.text, "score": h.score} for h in found.data]}


BUILTINS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "read_file",
        "Read a text file in the workspace. offset is the first line (1-based), limit the "
        "number of lines. Large files and outputs are cut, and say so.",
        _schema(
            {
                "path": PATH,
                "offset": {"type": "integer", "minimum": 1, "default": 1},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100_000},
            },
            ["path"],
        ),
        "read",
        read_file,
    ),
    ToolSpec(
        "write_file",
        "Write a text file in the workspace (replacing it whole), creating folders as needed.",
        _schema(
            {
                "path": PATH,
                "content": {"type": "string"},
                "create_dirs": {"type": "boolean", "default": True},
            },
            ["path", "content"],
        ),
        "write",
        write_file,
    ),
    ToolSpec(
        "edit_file",
        "Replace old_text with new_text in a workspace file. old_text must occur exactly "
        "once unless replace_all is true; include surrounding lines to make it unique.",
        _schema(
            {
                "path": PATH,
                "old_text": {"type": "string", "minLength": 1},
                "new_text": {"type": "string"},
                "replace_all": {"type": "boolean", "default": False},
            },
            ["path", "old_text", "new_text"],
        ),
        "write",
        edit_file,
    ),
    ToolSpec(
        "list_dir",
        "List a folder of the workspace: names, types (file, dir, symlink) and sizes.",
        _schema({"path": {**PATH, "default": "."}}, []),
        "read",
        list_dir,
    ),
    ToolSpec(
        "search_files",
        "Find files by glob (e.g. '*.py', 'src/**/test_*.py') under a folder of the "
        "workspace, and optionally the lines containing some text.",
        _schema(
            {
                "path": {**PATH, "default": "."},
                "glob": {"type": "string", "minLength": 1, "maxLength": 500, "default": "*"},
                "text": {"type": "string", "minLength": 1, "maxLength": 1_000},
                "case_sensitive": {"type": "boolean", "default": False},
                "max_results": {"type": "integer", "minimum": 1, "maximum": 10_000},
            },
            [],
        ),
        "read",
        search_files,
    ),
    ToolSpec(
        "exec",
        "Run an allowed program (no shell) in the workspace: argv is the program and its "
        "arguments. Returns the exit code and the (capped) output.",
        _schema(
            {
                "argv": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 10_000},
                    "minItems": 1,
                    "maxItems": 256,
                },
                "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
            },
            ["argv"],
        ),
        "execute",
        exec_program,
    ),
    ToolSpec(
        "web_fetch",
        "Fetch an http(s) URL and return its text (capped). Private, loopback and "
        "link-local addresses are refused.",
        _schema(
            {
                "url": {"type": "string", "minLength": 1, "maxLength": 8_192},
                "max_bytes": {"type": "integer", "minimum": 1},
            },
            ["url"],
        ),
        "network",
        web_fetch,
    ),
    ToolSpec(
        "remember",
        "Store something worth knowing in later conversations: a fact about the user, a "
        "preference, a decision. One short, self-contained sentence.",
        _schema(
            {
                "text": {"type": "string", "minLength": 1, "maxLength": 2000},
                "importance": {"type": "number", "minimum": 0, "maximum": 1},
                "tags": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,40}$"},
                    "maxItems": 10,
                },
            },
            ["text"],
        ),
        "memory",
        remember,
    ),
    ToolSpec(
        "recall",
        "Search what you remember about the user and this conversation.",
        _schema(
            {
                "query": {"type": "string", "minLength": 1, "maxLength": 500},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20},
            },
            ["query"],
        ),
        "memory",
        recall,
    ),
)
