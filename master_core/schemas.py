"""master_core's public HTTP contract.

Every request body is a :class:`PublicRequest`: before its fields are read, one validator
walks the whole JSON value and refuses text that is not valid Unicode (a lone UTF-16
surrogate such as ``"\\ud800"`` parses in JSON but cannot be encoded as UTF-8 by any
service downstream), naming where it was. Booleans and numbers are strict: ``"yes"`` is not
``true`` and ``"3"`` is not ``3``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from services.agent_core.schemas import (
    HISTORY_CONTENT_MAX_CHARS,
    SESSION_ID_PATTERN,
    HistoryMessage,
    TurnUsage,
)

MAX_KEY_DAYS = 3650
KEY_NAME_MAX = 100


def clean_key_name(name: str) -> str:
    """A key's name, trimmed: 1 to 100 printable characters, no control characters."""
    name = name.strip()
    if not name:
        raise ValueError("a key name must not be empty or only spaces")
    if len(name) > KEY_NAME_MAX:
        raise ValueError(f"a key name is at most {KEY_NAME_MAX} characters")
    if not name.isprintable():
        raise ValueError("a key name must be printable: no control characters (NUL, newline, ...)")
    return name


def unencodable_at(value: Any, path: str = "") -> str | None:
    """Where in a JSON value (keys too) there is text UTF-8 cannot encode, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "(body)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = unencodable_at(key, f"{path}.{key!a}" if path else repr(key))
            if where is None:
                where = unencodable_at(item, f"{path}.{key}" if path else str(key))
            if where is not None:
                return where
    elif isinstance(value, list):
        for i, item in enumerate(value):
            where = unencodable_at(item, f"{path}.{i}" if path else str(i))
            if where is not None:
                return where
    return None


class PublicRequest(BaseModel):
    """A request body of the public API: text must be valid Unicode everywhere in it."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = unencodable_at(data)
        if where is not None:
            raise ValueError(
                f"{where}: text contains a lone UTF-16 surrogate (e.g. \\ud800), which is not "
                "valid Unicode"
            )
        return data


KeyName = Annotated[
    str,
    Field(min_length=1, max_length=200, description="Printable, trimmed, 1 to 100 characters"),
    AfterValidator(clean_key_name),
]


class ChatRequest(PublicRequest):
    session_id: str | None = Field(
        None, pattern=SESSION_ID_PATTERN, description="Continue this session; omit to start one"
    )
    message: str = Field(min_length=1, description="What the user says")
    stream: StrictBool = Field(
        False, description="Answer with Server-Sent Events of the turn's progress"
    )


class ChatResponse(BaseModel):
    session_id: str = Field(description="Pass it back to continue the conversation")
    reply: str = Field(description="The agent's answer")
    model: str = Field(description="The model that answered")
    usage: TurnUsage = Field(description="Tokens and cost of the whole turn")
    turn_id: str = Field(description="The turn's id (its trace is on the dashboard)")


class ServiceHealth(BaseModel):
    ok: bool = Field(description="The service answered its /status")
    url: str = Field(description="Where master_core reaches it")
    status: dict[str, Any] | None = Field(None, description="The service's /status")
    error: str | None = Field(None, description="Why it is not ok")


class FleetStatus(BaseModel):
    """The fleet in detail, for admin keys."""

    ok: bool = Field(description="Every service answered")
    services: dict[str, ServiceHealth] = Field(description="Each service's health and status")


class ServiceUp(BaseModel):
    ok: bool = Field(description="The service answered its /status")


class FleetSummary(BaseModel):
    """The fleet for ordinary keys: up or down per service, no details."""

    ok: bool = Field(description="Every service answered")
    services: dict[str, ServiceUp] = Field(description="Each service: up or not")


class KeyCreate(PublicRequest):
    name: KeyName
    admin: StrictBool = Field(False, description="May administer (keys, fleet details, slices)")
    expires_in_days: StrictInt | None = Field(
        None, ge=1, le=MAX_KEY_DAYS, description="Refuse the key after this many days"
    )
    expires_at: datetime | None = Field(
        None, description="Refuse the key from this time on (ISO 8601; UTC if no offset)"
    )

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if self.expires_in_days is not None and self.expires_at is not None:
            raise ValueError("give expires_in_days or expires_at, not both")
        return self


class KeyCreated(BaseModel):
    id: str = Field(description="The key's id (for revoke and rotate)")
    name: str = Field(description="Who or what the key is for")
    admin: bool = Field(description="May administer")
    expires_at: datetime | None = Field(None, description="Refused from then on")
    key: str = Field(description="Shown once; only its hash is stored")


class KeyPublic(BaseModel):
    """A key as listed: never its secret nor its hash."""

    model_config = ConfigDict(from_attributes=True)
    id: str = Field(description="The key's id")
    name: str = Field(description="Who or what the key is for")
    prefix: str = Field(description="The first characters of the secret, to recognise it")
    admin: bool = Field(description="May administer")
    created_at: datetime = Field(description="When it was made (UTC)")
    expires_at: datetime | None = Field(None, description="Refused from then on (UTC)")
    revoked_at: datetime | None = Field(None, description="When it was revoked (UTC)")
    rotated_at: datetime | None = Field(None, description="When its secret was last replaced")
    last_used_at: datetime | None = Field(
        None, description="Last request with it (recorded at most once a minute)"
    )
    state: str = Field(description="active, expired or revoked")


class KeysPublic(BaseModel):
    data: list[KeyPublic] = Field(description="This page of keys, newest first")
    count: int = Field(description="How many keys there are in all")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=100, description="'text' parts are read; others are ignored")
    text: str | None = Field(None, description="The part's text")


class AgentMessage(HistoryMessage):
    """A chat completions message; text content parts are joined."""

    content: str | list[ContentPart] | None = Field(  # type: ignore[assignment]
        None, description=f"Text, or content parts; at most {HISTORY_CONTENT_MAX_CHARS} characters"
    )

    @model_validator(mode="after")
    def _bounded(self) -> AgentMessage:
        if len(self.text() or "") > HISTORY_CONTENT_MAX_CHARS:
            raise ValueError(f"content is longer than {HISTORY_CONTENT_MAX_CHARS} characters")
        return self

    def text(self) -> str | None:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content

    def as_history(self) -> HistoryMessage:
        """This message in the agent's history shape (content parts joined)."""
        fields = self.model_dump(exclude_none=True, exclude={"content"})
        return HistoryMessage(**fields, content=self.text())


class AgentCompletionRequest(PublicRequest):
    """OpenAI's request shape. The last message (the user's) is the turn's input; the ones
    before it are the history. ``model`` is informational: the agent's model answers."""

    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, max_length=200, description="Informational")
    messages: list[AgentMessage] = Field(
        min_length=1, max_length=1_000, description="The history, then the user's message"
    )
    stream: StrictBool = Field(False, description="Answer with chat.completion.chunk events")
