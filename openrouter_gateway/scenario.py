"""Scripted conversations and faults for the simulator, as data.

A scenario is a YAML or JSON file::

    name: read_then_answer
    description: reads a file with a tool, then answers
    match: "(?i)what does notes.txt say"   # optional: picked when the first user message matches
    turns:
      - tool_calls:
          - name: read_file
            arguments: {path: notes.txt}
      - content: "The file says hello."
    after_last: echo        # echo (default) | repeat: what answers after the scripted turns

The turn answered is the number of assistant messages already in the request, so a
conversation replays the same way every time and the simulator keeps no session state.
A turn may carry a ``fault``::

    fault: {status: 429, retry_after: 0.2, times: 1}   # fail the first attempt, then answer
    fault: {mid_stream: true, status: 502}              # a streamed error after some content
    fault: {drop: true}                                 # the connection closes mid-answer

Faults can also be asked for per request with the header
``X-Simulator-Fault: status=503,times=2`` (same fields, comma-separated ``key=value``).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_SCENARIO_BYTES = 256 * 1024


class ScenarioError(ValueError):
    """A scenario file or fault header that cannot be used, with the reason."""


def _compiled(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(_Strict):
    status: int | None = Field(None, ge=400, le=599, description="Answer with this error")
    message: str | None = Field(None, max_length=500)
    retry_after: float | None = Field(None, ge=0, le=3600, description="Retry-After seconds")
    times: int | None = Field(
        None, ge=1, description="Only the first N attempts fail; later ones answer normally"
    )
    mid_stream: bool = Field(False, description="Streamed: an error chunk after some content")
    drop: bool = Field(False, description="Close the connection part-way through the answer")
    after_chunks: int = Field(2, ge=0, le=1000, description="Chunks sent before a stream fault")


class ToolCallSpec(_Strict):
    id: str | None = Field(None, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    arguments: dict[str, Any] | str = Field(default_factory=dict)

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments  # scripted malformed or partial JSON stays as written
        return json.dumps(self.arguments)


class UsageSpec(_Strict):
    prompt_tokens: int | None = Field(None, ge=0)
    completion_tokens: int | None = Field(None, ge=0)
    cached_tokens: int = Field(0, ge=0)
    reasoning_tokens: int = Field(0, ge=0)


class Extract(_Strict):
    """Answer with JSON built from the conversation: the last user message's lines written
    by ``role`` (``role: text``), split into sentences, those matching ``pattern`` listed
    under ``key`` as ``{"text": sentence, **item}``. Lets a scenario stand in for an
    extraction prompt (e.g. memory consolidation) offline."""

    key: str = Field(min_length=1, max_length=64, description="The JSON key of the list")
    role: str = Field("user", max_length=32, description="Whose lines are read")
    pattern: str = Field(max_length=500, description="Regex a sentence must match")
    min_chars: int = Field(1, ge=0, le=10_000)
    max_chars: int = Field(300, ge=1, le=10_000)
    most: int = Field(20, ge=0, le=1_000, description="At most this many items")
    item: dict[str, Any] = Field(default_factory=dict, description="Fields of every item")

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        return _compiled(value)

    def answer(self, last_user: str) -> dict[str, Any]:
        """The JSON object for ``last_user``."""
        wanted = re.compile(self.pattern)
        found: list[dict[str, Any]] = []
        for line in last_user.splitlines():
            who, _, said = line.partition(": ")
            if who.strip().lower() != self.role.lower():
                continue
            for sentence in re.split(r"(?<=[.!?])\s+", said):
                sentence = sentence.strip()
                if self.min_chars <= len(sentence) <= self.max_chars and wanted.search(sentence):
                    found.append({"text": sentence, **self.item})
        return {self.key: found[: self.most]}


class Turn(_Strict):
    content: str | None = Field(None, max_length=100_000)
    extract: Extract | None = Field(None, description="Answer with JSON extracted from the input")
    tool_calls: list[ToolCallSpec] = Field(default_factory=list, max_length=64)
    finish_reason: str | None = Field(None, max_length=32)
    usage: UsageSpec | None = None
    fault: Fault | None = None
    latency_ms: float = Field(0, ge=0, le=600_000, description="Delay before the answer")
    chunk_delay_ms: float = Field(0, ge=0, le=60_000, description="Delay between chunks")


class Scenario(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = Field("", max_length=2_000)
    match: str | None = Field(None, max_length=500, description="Regex on the first user text")
    model: str | None = Field(None, max_length=200, description="Answer as this model")
    turns: list[Turn] = Field(min_length=1, max_length=1_000)
    after_last: Literal["echo", "repeat"] = "echo"

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return None if value is None else _compiled(value)

    def turn_for(self, assistant_turns: int) -> Turn | None:
        """The scripted turn after ``assistant_turns`` answers, or None to echo."""
        if assistant_turns < len(self.turns):
            return self.turns[assistant_turns]
        return self.turns[-1] if self.after_last == "repeat" else None


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses anchors and aliases (no expansion attacks)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ScenarioError("anchors and aliases are not allowed")
        return super().compose_node(parent, index)


def parse_scenario(text: str, *, source: str) -> Scenario:
    """A scenario from YAML or JSON text (safe loader, size limit, no aliases)."""
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{source}: larger than {MAX_SCENARIO_BYTES} bytes")
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise ScenarioError(f"{source}: {problems}") from exc


def load_scenarios(folder: Path | None = None) -> dict[str, Scenario]:
    """The shipped scenarios, then those of ``folder`` (which override by name)."""
    found: dict[str, Scenario] = {}
    shipped = resources.files("openrouter_gateway").joinpath("data/scenarios")
    sources: list[tuple[str, str]] = [
        (f"scenarios/{f.name}", f.read_text("utf-8"))
        for f in sorted(shipped.iterdir(), key=lambda f: f.name)
        if f.name.endswith((".yaml", ".yml", ".json"))
    ]
    if folder is not None:
        for path in sorted(folder.glob("*")):
            if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
                if path.stat().st_size > MAX_SCENARIO_BYTES:
                    raise ScenarioError(f"{path}: larger than {MAX_SCENARIO_BYTES} bytes")
                sources.append((str(path), path.read_text("utf-8")))
    for source, text in sources:
        scenario = parse_scenario(text, source=source)
        found[scenario.name] = scenario
    return found


def parse_fault_header(value: str) -> Fault:
    """``status=429,retry_after=1,times=2`` (or ``drop``, ``mid_stream``) as a Fault."""
    fields: dict[str, Any] = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, raw = part.partition("=")
        key = key.strip()
        fields[key] = raw.strip() if sep else True
    try:
        return Fault.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0] if e['loc'] else ''}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"X-Simulator-Fault: {problems}") from exc
