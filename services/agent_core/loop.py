"""The agent loop: ask the model, run the tools it calls, feed the results back, repeat
until it answers, within bounds that are always reported when they stop a turn.

One turn:

1. context: the system prompt, the session's history trimmed to a token budget (oldest
   first out, never leaving a tool result without the call it answers), the memories
   relevant to the message, the user message, and the enabled tools' definitions (the
   memory tools ``remember``/``recall`` among them when memory is on);
2. with ``meta_reasoning`` on, a plan for a multi-step request, kept in the context;
3. LLM call (a typed ``ChatCompletion`` from the providers slice); its tool calls run in
   parallel (bounded) through the tools slice, with the turn's owner and session beside
   the model's arguments, each result (or error: bad arguments, refused path, a tool that
   failed) fed back as a ``tool`` message; then the next LLM call;
4. a draft answer is, with ``meta_reasoning``, reviewed once against the request; a review
   that asks for changes buys one more round;
5. bounds: ``max_iterations`` LLM calls, ``max_turn_tokens``, ``max_turn_cost_usd`` and
   ``turn_deadline_s``. The bound that stops a turn is its ``stop_reason`` (and the reply
   says so); ``final_answer`` means the model finished.

Every step is kept in the trace (``GET /v1/turns/{id}``); progress events go to ``emit``
for Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from openrouter_gateway import assess
from services.agent_core.config import AgentCoreSettings
from services.kit.errors import SliceError, UpstreamError
from services.memory.client import MemoryClient
from services.providers.client import ProvidersClient
from services.providers.schemas import CompletionMessage, ToolCall
from services.skills.client import SkillsClient
from services.skills.schemas import SelectRequest
from services.tools.client import ToolsClient
from services.tools.schemas import MEMORY_TOOLS, ToolCallRequest

log = structlog.get_logger("agent_core.loop")
Emit = Callable[[str, dict[str, Any]], Awaitable[None]]

PLAN_PROMPT = (
    "Before answering, write a short numbered plan (at most 6 steps) for the user's "
    "request: what to find out or do, in order, and which tools to use. Reply with the "
    "plan only."
)
REVIEW_PROMPT = (
    "You are reviewing a draft answer before it is sent. Check it against the user's "
    "request: does it answer every part, correctly, using what the tools returned? Reply "
    "with exactly OK if it does, or with REVISE: followed by what is missing or wrong."
)


def estimate_tokens(message: dict[str, Any]) -> int:
    """A cheap size estimate (4 characters a token, plus overhead) for trimming."""
    size = len(message.get("content") or "") if isinstance(message.get("content"), str) else 0
    if message.get("tool_calls"):
        size += len(json.dumps(message["tool_calls"]))
    return math.ceil(size / 4) + 4


def trim_history(history: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The newest messages that fit ``budget`` tokens, starting at a user message, so no
    tool result is kept without the assistant call it answers."""
    kept: list[dict[str, Any]] = []
    used = 0
    for message in reversed(history):
        cost = estimate_tokens(message)
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while kept and kept[0].get("role") != "user":
        kept.pop(0)
    return kept


@dataclass
class Step:
    seq: int
    kind: str
    name: str | None
    outcome: str
    detail: dict[str, Any]
    tokens: int
    cost_usd: float
    started_ms: float
    duration_ms: float


@dataclass
class LoopResult:
    reply: str
    model: str
    stop_reason: str
    iterations: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    new_messages: list[dict[str, Any]]  # assistant and tool messages of this turn
    steps: list[Step] = field(default_factory=list)


class BoundReached(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass
class AgentLoop:
    settings: AgentCoreSettings
    providers: ProvidersClient
    tools: ToolsClient | None
    turn_id: str
    session_id: str
    api_key_id: str | None
    emit: Emit | None = None
    stream_text: bool = False
    memory: MemoryClient | None = None
    skills: SkillsClient | None = None
    started: float = field(default_factory=time.perf_counter)
    steps: list[Step] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""

    # -- bookkeeping ---------------------------------------------------------------------

    def _ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def _step(
        self,
        kind: str,
        name: str | None,
        began_ms: float,
        *,
        outcome: str = "ok",
        tokens: int = 0,
        cost: float = 0.0,
        **detail: Any,
    ) -> Step:
        step = Step(
            len(self.steps) + 1,
            kind,
            name,
            outcome,
            _capped(detail),
            tokens,
            cost,
            round(began_ms, 3),
            round(self._ms() - began_ms, 3),
        )
        self.steps.append(step)
        return step

    async def _emit(self, event: str, data: dict[str, Any]) -> None:
        if self.emit is not None:
            await self.emit(event, data)

    def _left_s(self) -> float:
        return self.settings.turn_deadline_s - (time.perf_counter() - self.started)

    def _check_bounds(self) -> None:
        s = self.settings
        if self._left_s() <= 0:
            raise BoundReached("deadline", f"the turn reached its {s.turn_deadline_s:g}s limit")
        if self.prompt_tokens + self.completion_tokens >= s.max_turn_tokens:
            raise BoundReached(
                "token_budget", f"the turn used its budget of {s.max_turn_tokens} tokens"
            )
        if self.cost_usd >= s.max_turn_cost_usd:
            raise BoundReached(
                "cost_budget", f"the turn spent its budget of ${s.max_turn_cost_usd:g}"
            )

    # -- LLM ---------------------------------------------------------------------------

    async def _llm(
        self, kind: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> CompletionMessage:
        """One completion within the turn's deadline; usage counted, step recorded."""
        self._check_bounds()
        payload: dict[str, Any] = {"model": self.settings.model, "messages": messages}
        if tools:
            payload["tools"] = tools
        began = self._ms()
        await self._emit("llm.started", {"kind": kind, "iteration": self._llm_calls() + 1})
        try:
            async with asyncio.timeout(self._left_s()):
                if self.stream_text and kind == "llm":

                    async def on_text(text: str) -> None:
                        await self._emit("delta", {"text": text})

                    answer = await self.providers.stream_chat_completions(
                        payload,
                        on_text=on_text,
                        session_id=self.session_id,
                        api_key_id=self.api_key_id,
                    )
                else:
                    answer = await self.providers.chat_completions(
                        payload, session_id=self.session_id, api_key_id=self.api_key_id
                    )
        except TimeoutError:
            self._step(kind, self.settings.model, began, outcome="deadline")
            raise BoundReached(
                "deadline", f"the turn reached its {self.settings.turn_deadline_s:g}s limit"
            ) from None
        except SliceError as exc:
            self._step(kind, self.settings.model, began, outcome=exc.code, error=exc.message)
            raise
        usage = answer.usage
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cost_usd += usage.cost
        self.model = answer.model or self.settings.model
        if not answer.choices:
            raise UpstreamError("the LLM returned no choices")
        choice = answer.choices[0]
        message = choice.message
        self._step(
            kind,
            self.model,
            began,
            tokens=usage.prompt_tokens + usage.completion_tokens,
            cost=usage.cost,
            finish_reason=choice.finish_reason,
            content=message.content,
            tool_calls=[{"name": tc.function.name, "id": tc.id} for tc in message.tool_calls],
        )
        return message

    def _llm_calls(self) -> int:
        return sum(1 for s in self.steps if s.kind == "llm")

    # -- tools -------------------------------------------------------------------------

    async def _run_tools(self, calls: list[ToolCall], offered: set[str]) -> list[dict[str, Any]]:
        """Every call of one LLM answer, in parallel (bounded); results in call order."""
        gate = asyncio.Semaphore(self.settings.max_parallel_tools)

        async def one(call: ToolCall) -> dict[str, Any]:
            async with gate:
                return await self._run_tool(call, offered)

        return list(await asyncio.gather(*(one(c) for c in calls)))

    async def _run_tool(self, call: ToolCall, offered: set[str]) -> dict[str, Any]:
        name, raw_args, call_id = call.function.name, call.function.arguments or "{}", call.id
        began = self._ms()
        await self._emit("tool.started", {"name": name, "call_id": call_id, "arguments": raw_args})
        outcome, content = "ok", ""
        try:
            if name not in offered or self.tools is None:
                raise _ToolRefused("unknown_tool", f"there is no tool named {name!r}")
            try:
                arguments = json.loads(raw_args) if raw_args.strip() else {}
            except ValueError as exc:
                raise _ToolRefused("invalid_json", f"arguments are not valid JSON: {exc}") from None
            if not isinstance(arguments, dict):
                raise _ToolRefused("invalid_arguments", "arguments must be a JSON object")
            async with asyncio.timeout(max(0.001, self._left_s())):
                # Whose memories a memory tool reads or writes is the turn's owner, sent
                # beside the arguments: nothing the model writes can change it.
                done = await self.tools.call(
                    name,
                    ToolCallRequest(
                        arguments=arguments,
                        workspace=self.settings.workspace,
                        session_id=self.session_id,
                        turn_id=self.turn_id,
                        owner=self.api_key_id,
                    ),
                )
            content = json.dumps(done.result, ensure_ascii=False)
        except _ToolRefused as exc:
            outcome = exc.code
            content = json.dumps({"error": {"code": exc.code, "message": exc.msg}})
        except SliceError as exc:
            # Refusals and failures go back to the model, which may correct itself.
            outcome = exc.code
            content = json.dumps({"error": {"code": exc.code, "message": exc.message}})
        except TimeoutError:
            outcome = "deadline"
            content = json.dumps(
                {"error": {"code": "deadline", "message": "the turn ran out of time"}}
            )
        cap = self.settings.tool_result_max_chars
        if len(content) > cap:
            content = (
                content[:cap]
                + f"\n[... tool result truncated: {len(content) - cap} more characters]"
            )
        self._step(
            "tool",
            name,
            began,
            outcome=outcome,
            call_id=call_id,
            arguments=raw_args,
            result=content,
        )
        await self._emit(
            "tool.finished",
            {"name": name, "call_id": call_id, "outcome": outcome, "result": content[:2000]},
        )
        return {"role": "tool", "tool_call_id": call_id, "content": content}

    # -- memory --------------------------------------------------------------------------

    async def _recall_for(self, user_message: str) -> str | None:
        """Relevant memories for this turn, within the memory token budget."""
        budget = self.settings.memory_token_budget
        if self.memory is None or not budget:
            return None
        began = self._ms()
        try:
            found = await self.memory.search(
                user_message,
                owner=self.api_key_id,
                user=self.api_key_id,
                session_id=self.session_id,
                limit=10,
            )
        except SliceError as exc:
            # Without the memory slice the agent still answers; the trace says so.
            self._step("memory", "recall", began, outcome=exc.code, error=exc.message)
            return None
        lines, used = [], 0
        for hit in found.data:
            cost = math.ceil(len(hit.memory.text) / 4) + 2
            if used + cost > budget:
                break
            lines.append(f"- {hit.memory.text}")
            used += cost
        self._step(
            "memory", "recall", began, found=len(found.data), used=len(lines), tokens_est=used
        )
        if not lines:
            return None
        return "What you remember that may be relevant:\n" + "\n".join(lines)

    async def _skills_for(self, user_message: str, tools: list[str]) -> str | None:
        """The instructions of the skills relevant to the request (skills whose tools are
        missing, or that are switched off, are skipped; the trace says why)."""
        assert self.skills is not None
        began = self._ms()
        try:
            chosen = await self.skills.select(
                SelectRequest(
                    text=user_message[:100_000],
                    session_id=self.session_id,
                    available_tools=tools,
                )
            )
        except SliceError as exc:
            self._step("skills", "select", began, outcome=exc.code, error=exc.message)
            return None
        self._step(
            "skills",
            "select",
            began,
            selected=[{"name": c.name, "why": c.why} for c in chosen.selected],
            skipped=[{"name": c.name, "reason": c.reason} for c in chosen.skipped],
        )
        if not chosen.selected:
            return None
        parts = [f"## Skill: {c.name} (v{c.version})\n{c.instructions}" for c in chosen.selected]
        await self._emit("skills", {"selected": [c.name for c in chosen.selected]})
        return "Follow these skills where they apply:\n\n" + "\n\n".join(parts)

    # -- the turn ----------------------------------------------------------------------

    async def run(self, context: list[dict[str, Any]], user_message: str) -> LoopResult:
        s = self.settings
        messages = [*context, {"role": "user", "content": user_message}]
        new: list[dict[str, Any]] = []
        tool_defs: list[dict[str, Any]] = []
        memory_on = s.memory_enabled and self.memory is not None
        if (s.tools_enabled or memory_on) and self.tools is not None:
            began = self._ms()
            try:
                tool_defs = [
                    t
                    for t in await self.tools.openai_tools()
                    # remember/recall come with memory; the others with tools
                    if (memory_on if t["function"]["name"] in MEMORY_TOOLS else s.tools_enabled)
                ]
            except SliceError as exc:
                # Without the tools slice the agent still answers, and says so in the trace.
                self._step("tools", None, began, outcome=exc.code, error=exc.message)
        if memory_on:
            recalled = await self._recall_for(user_message)
            if recalled:
                messages.insert(len(messages) - 1, {"role": "system", "content": recalled})
        offered = {t["function"]["name"] for t in tool_defs}
        if s.skills_enabled and self.skills is not None:
            guidance = await self._skills_for(user_message, sorted(offered))
            if guidance:
                messages.insert(len(messages) - 1, {"role": "system", "content": guidance})
        stop_reason, reply, reflections, tool_calls = "final_answer", "", 0, 0
        try:
            if s.meta_reasoning and assess(messages[-1:]).signals.get("multi_step", 0) > 0:
                plan = await self._llm(
                    "plan", [*messages, {"role": "system", "content": PLAN_PROMPT}], None
                )
                text = (plan.content or "").strip()
                if text:
                    messages.append({"role": "system", "content": f"Your plan:\n{text}"})
                    await self._emit("plan", {"text": text})
            while True:
                if self._llm_calls() >= s.max_iterations:
                    raise BoundReached(
                        "max_iterations", f"the turn reached its limit of {s.max_iterations} steps"
                    )
                message = await self._llm("llm", messages, tool_defs)
                calls = message.tool_calls
                assistant: dict[str, Any] = {"role": "assistant", "content": message.content}
                if calls:
                    assistant["tool_calls"] = [c.model_dump(exclude_none=True) for c in calls]
                messages.append(assistant)
                new.append(assistant)
                if calls:
                    tool_calls += len(calls)
                    results = await self._run_tools(calls, offered)
                    messages.extend(results)
                    new.extend(results)
                    continue
                reply = message.content or ""
                if s.meta_reasoning and reflections < s.max_reflections:
                    reflections += 1
                    verdict = await self._review(messages)
                    if verdict is not None:
                        note = f"A review of your draft found: {verdict} Revise your answer."
                        messages.append({"role": "system", "content": note})
                        continue
                break
        except BoundReached as bound:
            stop_reason = bound.reason
            self._step(
                "stop", bound.reason, self._ms(), outcome=bound.reason, message=bound.message
            )
            last = next(
                (
                    m.get("content")
                    for m in reversed(new)
                    if m["role"] == "assistant" and m.get("content")
                ),
                None,
            )
            reply = (
                f"{last}\n\n" if last else ""
            ) + f"[Stopped before finishing: {bound.message}.]"
            await self._emit("stopped", {"reason": bound.reason, "message": bound.message})
        else:
            self._step("stop", "final_answer", self._ms())
        if new and new[-1]["role"] == "assistant" and not new[-1].get("tool_calls"):
            new.pop()  # the final answer is stored as the reply
        return LoopResult(
            reply=reply,
            model=self.model or s.model,
            stop_reason=stop_reason,
            iterations=self._llm_calls(),
            tool_calls=tool_calls,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=self.cost_usd,
            new_messages=new,
            steps=self.steps,
        )

    async def _review(self, messages: list[dict[str, Any]]) -> str | None:
        """None when the draft is fine, else what to change."""
        review = await self._llm(
            "reflection",
            [*_without_tools(messages), {"role": "system", "content": REVIEW_PROMPT}],
            None,
        )
        text = (review.content or "").strip()
        verdict: str | None = None
        if text.upper().startswith("REVISE"):
            verdict = text.split(":", 1)[-1].strip() or "the draft does not answer the request."
        shown = {"verdict": "ok" if verdict is None else "revise", "text": text[:500]}
        await self._emit("reflection", shown)
        return verdict


class _ToolRefused(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _without_tools(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as plain text turns (a review needs no tool protocol)."""
    out = []
    for m in messages:
        if m["role"] == "tool":
            out.append({"role": "user", "content": f"[tool result] {m.get('content')}"})
        elif m["role"] == "assistant" and m.get("tool_calls"):
            names = ", ".join(tc.get("function", {}).get("name", "?") for tc in m["tool_calls"])
            out.append(
                {
                    "role": "assistant",
                    "content": f"[called tools: {names}] {m.get('content') or ''}",
                }
            )
        else:
            out.append(m)
    return out


def _capped(detail: dict[str, Any], limit: int = 4_000) -> dict[str, Any]:
    out = {}
    for key, value in detail.items():
        if isinstance(value, str) and len(value) > limit:
            value = value[:limit] + f"...[{len(value) - limit} more characters]"
        out[key] = value
    return out
