"""The agent loop's settings: ``agent_core:`` in the config, ``REFACTORBOT_AGENT_CORE__*``."""

from __future__ import annotations

from pydantic import Field

from services.kit.config import ServiceSettings


class AgentCoreSettings(ServiceSettings):
    model: str = Field("openai/gpt-4o-mini", description="Model asked for each turn")
    system_prompt: str = Field(
        "You are RefactorBot, a helpful assistant. Answer clearly and briefly.",
        description="System prompt placed before the history",
    )
    max_history_messages: int = Field(50, ge=0, le=10_000, description="History sent per turn")
    max_message_chars: int = Field(32_000, gt=0, description="Largest user message accepted")
    history_token_budget: int = Field(
        8_000, gt=0, description="History kept per turn, in estimated tokens (oldest dropped)"
    )
    tools_enabled: bool = Field(True, description="Offer the tools slice's tools to the model")
    workspace: str = Field("default", max_length=64, description="Workspace tool calls use")
    max_iterations: int = Field(8, ge=1, le=100, description="LLM calls per turn at most")
    max_turn_tokens: int = Field(200_000, gt=0, description="Tokens one turn may use")
    max_turn_cost_usd: float = Field(1.0, gt=0, description="Money one turn may spend")
    turn_deadline_s: float = Field(150.0, gt=0, le=3600, description="Wall-clock limit of a turn")
    max_parallel_tools: int = Field(4, ge=1, le=64, description="Tool calls run at once")
    tool_result_max_chars: int = Field(
        16_000, gt=0, description="A tool result fed back to the model is cut to this"
    )
    meta_reasoning: bool = Field(
        False, description="Plan multi-step requests and review each draft answer once"
    )
    memory_enabled: bool = Field(
        True, description="Recall relevant memories each turn and offer remember/recall"
    )
    memory_token_budget: int = Field(
        800, ge=0, description="Memories placed in a turn's context, in estimated tokens"
    )
    skills_enabled: bool = Field(True, description="Add the skills relevant to each request")
    max_reflections: int = Field(1, ge=0, le=5, description="Extra rounds a review may ask for")


#: The section this service adds to the fleet's Settings (found by the kit).
SETTINGS_MODEL = AgentCoreSettings
