"""The model router: which model should answer this request, and why.

1. A local complexity assessment of the request (length, code, reasoning and multi-step
   markers; microseconds, no model call) puts it in a tier: simple, medium, complex or
   reasoning.
2. Capability matching against the catalog: tools when the request offers tools, a context
   window that fits the prompt plus the completion, the input modalities it uses (images).
3. The cheapest model of at least the required tier within the caller's max price; the next
   cheapest capable ones become fallbacks (OpenRouter's ``models`` list).

Every decision carries its reason, so it can be shown in a header, a log line and the
dashboard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Tier = Literal["simple", "medium", "complex", "reasoning"]
TIER_RANK: dict[str, int] = {"simple": 1, "medium": 2, "complex": 3, "reasoning": 3}

#: How capable each known model is (1 small, 2 solid, 3 strongest) and whether it reasons
#: natively. Models not listed get tier 2 if priced above $1/M prompt tokens, else 1.
DEFAULT_QUALITY: dict[str, int] = {
    "meta-llama/llama-3.1-8b-instruct": 1,
    "mistralai/mistral-small-24b-instruct-2501": 1,
    "google/gemini-2.0-flash-001": 2,
    "openai/gpt-4o-mini": 2,
    "anthropic/claude-3.5-haiku": 2,
    "meta-llama/llama-3.3-70b-instruct": 2,
    "qwen/qwen-2.5-72b-instruct": 2,
    "deepseek/deepseek-chat": 3,
    "openai/gpt-4o": 3,
    "anthropic/claude-3.5-sonnet": 3,
    "openai/o3-mini": 3,
    "deepseek/deepseek-r1": 3,
}
EXPECTED_COMPLETION = {"simple": 150, "medium": 600, "complex": 1500, "reasoning": 2000}

_CODE = re.compile(
    r"```|\bdef \w+\(|\bclass \w+|\bfunction\b|=>|\bimport \w+|#include|\bSELECT\b.+\bFROM\b"
    r"|Traceback \(most recent call last\)|\w+Error:|\bconst \w+|\bfn \w+|[{};]\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_REASONING = re.compile(
    r"\bprove\b|\bproof\b|\bderive\b|\bderivation\b|\bdeduc|\bprobability\b|\bexpected "
    r"(number|value)\b|\binduction\b|\btheorem\b|\bconverge|\bfallac|\bvalid\b|\blogic(al)?\b"
    r"|\bpuzzle\b|\bsolve\b|\boptimal\b|\breason (carefully|backwards)|\brigorous"
    r"|\bcomplexity\b|\bequation\b|\bhow many .* needed\b|\d\s*[\^*/=+-]\s*\d",
    re.IGNORECASE,
)
_MULTI_STEP = re.compile(
    r"\bthen\b|\bstep[- ]by[- ]step\b|\bfirst\b|\bfinally\b|\bplan\b|\bincluding\b|\blist\b"
    r"|\bexplain each\b|^\s*\d+[.)]\s",
    re.IGNORECASE | re.MULTILINE,
)
_DEPTH = re.compile(
    r"\barchitecture\b|\bdesign\b|\btrade-?offs?\b|\bscal(e|able|ing)\b|\bsecurity\b"
    r"|\bvulnerab|\bmigrat|\bfailure modes?\b|\broot cause\b|\bconcurren|\bdistributed\b"
    r"|\bspecification\b|\brefactor|\bbenchmark|\bschema\b|\bpipeline\b|\bpostmortem\b"
    r"|\bkubernetes\b|\bproduction\b|\bunit tests?\b|\bproperty-based\b",
    re.IGNORECASE,
)
_TASK = re.compile(
    r"\b(write|explain|summari[sz]e|compare|draft|rewrite|suggest|describe|analy[sz]e|review"
    r"|how do i|what are the pros|itinerary|plan|design|create|build|implement)\b",
    re.IGNORECASE,
)
_ITEMS = re.compile(r",|;|\band\b", re.IGNORECASE)


@dataclass(frozen=True)
class Assessment:
    tier: Tier
    score: float
    signals: dict[str, int]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def assess(messages: Sequence[Mapping[str, Any]]) -> Assessment:
    """Place a request in a tier from its last user message (and how long the chat is)."""
    last = next(
        (_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    words = len(last.split())
    code = len(_CODE.findall(last))
    reasoning = len(_REASONING.findall(last))
    steps = len(_MULTI_STEP.findall(last))
    depth = len(_DEPTH.findall(last))
    task = len(_TASK.findall(last))
    questions = last.count("?")
    items = len(_ITEMS.findall(last))  # how many requirements are strung together
    signals = {
        "words": words,
        "code": code,
        "reasoning": reasoning,
        "multi_step": steps,
        "depth": depth,
        "task": task,
        "questions": questions,
        "items": items,
        "history": len(messages),
    }
    score = (
        min(words, 300) / 15
        + 2.0 * min(code, 4)
        + 1.5 * min(depth, 5)
        + 1.0 * min(steps, 5)
        + 1.5 * min(task, 2)
        + 0.5 * min(questions, 4)
        + 0.5 * min(items, 8)
    )
    if reasoning >= 2 or (reasoning == 1 and code == 0 and depth == 0 and words < 80 and task == 0):
        tier: Tier = "reasoning"
    elif score >= 7 or (code and depth) or depth >= 3:
        tier = "complex"
    elif score >= 1.8:
        tier = "medium"
    else:
        tier = "simple"
    return Assessment(tier=tier, score=round(score, 2), signals=signals)


@dataclass(frozen=True)
class Needs:
    """What the request requires of a model."""

    tools: bool = False
    images: bool = False
    context_tokens: int = 0


def needs_of(payload: Mapping[str, Any]) -> Needs:
    messages = payload.get("messages") or []
    images = any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
        for m in messages
        if isinstance(m, Mapping)
    )
    prompt_tokens = len(json.dumps(messages, ensure_ascii=False)) // 3  # generous estimate
    return Needs(
        tools=bool(payload.get("tools")),
        images=images,
        context_tokens=prompt_tokens + int(payload.get("max_tokens") or 1024),
    )


@dataclass(frozen=True)
class RouteDecision:
    model: str
    fallbacks: list[str]
    tier: Tier
    reason: str
    estimated_cost_usd: float
    assessment: Assessment
    rejected: dict[str, str] = field(default_factory=dict)

    def header(self) -> str:
        """The reason, short enough for an HTTP header."""
        return self.reason[:300]


class NoModelFits(ValueError):
    """No model in the catalog meets the request's needs within the price."""


def _quality(model: Mapping[str, Any], quality: Mapping[str, int]) -> int:
    if model["id"] in quality:
        return quality[model["id"]]
    prompt = Decimal(str((model.get("pricing") or {}).get("prompt", "0")))
    return 2 if prompt > Decimal("0.000001") else 1


def _reasons(model: Mapping[str, Any], needs: Needs) -> str | None:
    params = model.get("supported_parameters") or []
    if needs.tools and "tools" not in params:
        return "no tool calling"
    arch = model.get("architecture") or {}
    if needs.images and "image" not in (arch.get("input_modalities") or []):
        return "no image input"
    if needs.context_tokens > int(model.get("context_length") or 0):
        return f"context {model.get('context_length')} < {needs.context_tokens} needed"
    return None


def route(
    payload: Mapping[str, Any],
    catalog: Mapping[str, Mapping[str, Any]],
    *,
    max_price_usd: float | None = None,
    quality: Mapping[str, int] = DEFAULT_QUALITY,
    max_fallbacks: int = 2,
) -> RouteDecision:
    """Choose the model for ``payload`` (OpenAI chat request) from ``catalog`` (id -> entry)."""
    assessment = assess(payload.get("messages") or [])
    needs = needs_of(payload)
    need_rank = TIER_RANK[assessment.tier]
    completion = int(payload.get("max_tokens") or EXPECTED_COMPLETION[assessment.tier])
    prompt_tokens = needs.context_tokens - int(payload.get("max_tokens") or 1024)
    rejected: dict[str, str] = {}
    fits: list[tuple[Decimal, str]] = []
    for mid, model in catalog.items():
        pricing = model.get("pricing")
        if not pricing:
            rejected[mid] = "unpriced"
            continue
        if _quality(model, quality) < need_rank:
            rejected[mid] = f"below the {assessment.tier} tier"
            continue
        if (
            assessment.tier == "reasoning"
            and "reasoning" not in (model.get("supported_parameters") or [])
            and _quality(model, quality) < 3
        ):
            rejected[mid] = "not a reasoning model"
            continue
        why = _reasons(model, needs)
        if why:
            rejected[mid] = why
            continue
        cost = (
            Decimal(str(pricing.get("prompt", "0"))) * prompt_tokens
            + Decimal(str(pricing.get("completion", "0"))) * completion
            + Decimal(str(pricing.get("request", "0") or "0"))
        )
        if max_price_usd is not None and cost > Decimal(str(max_price_usd)):
            rejected[mid] = f"estimated ${cost:.6f} above the max ${max_price_usd}"
            continue
        fits.append((cost, mid))
    if not fits:
        raise NoModelFits(
            f"no model fits a {assessment.tier} request"
            + (" with tools" if needs.tools else "")
            + (" with images" if needs.images else "")
            + (f" under ${max_price_usd}" if max_price_usd is not None else "")
        )
    fits.sort()
    cost, chosen = fits[0]
    wants = ", ".join(w for w, on in (("tools", needs.tools), ("images", needs.images)) if on)
    reason = (
        f"{assessment.tier} request (score {assessment.score}); cheapest capable model"
        + (f" with {wants}" if wants else "")
        + f" of {len(fits)} that fit, est. ${float(cost):.6f}"
    )
    return RouteDecision(
        model=chosen,
        fallbacks=[m for _, m in fits[1 : 1 + max_fallbacks]],
        tier=assessment.tier,
        reason=reason,
        estimated_cost_usd=float(cost),
        assessment=assessment,
        rejected=rejected,
    )
