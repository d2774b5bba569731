"""Upstreams: where a completion is sent. The configured one (OpenRouter, or the simulator
without a key) serves every model by default; extra OpenAI-compatible upstreams serve the
models whose ids start with their prefixes (longest prefix wins). Their API keys are stored
for use and never returned by the API."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from openrouter_gateway import OpenRouterClient, RetryPolicy
from services.kit.config import Settings
from services.kit.errors import Conflict, NotFound
from services.kit.versions import bump_version
from services.providers.models import Upstream
from services.providers.schemas import UpstreamCreate, UpstreamPublic, UpstreamUpdate

DEFAULT = "default"
UPSTREAMS_REGISTRY = "providers.upstreams"  # its row in kit_registry_versions


def _public(row: Upstream) -> UpstreamPublic:
    return UpstreamPublic(
        name=row.name,
        base_url=row.base_url,
        has_api_key=bool(row.api_key),
        api_key_hint=row.api_key[-4:] if row.api_key and len(row.api_key) >= 12 else None,
        model_prefixes=row.model_prefixes,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def create_upstream(*, session: Session, data: UpstreamCreate) -> UpstreamPublic:
    if data.name == DEFAULT:
        raise Conflict(f"{DEFAULT!r} is the configured upstream's name")
    now = datetime.now(UTC)
    row = Upstream(
        name=data.name,
        base_url=data.base_url.rstrip("/"),
        api_key=data.api_key,
        model_prefixes=data.model_prefixes,
        enabled=data.enabled,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"upstream {data.name!r} exists already") from exc
    bump_version(session, name=UPSTREAMS_REGISTRY)
    return _public(row)


def list_upstreams(*, session: Session) -> list[UpstreamPublic]:
    return [_public(r) for r in session.exec(select(Upstream).order_by(col(Upstream.name)))]


def update_upstream(*, session: Session, name: str, data: UpstreamUpdate) -> UpstreamPublic:
    row = session.get(Upstream, name)
    if row is None:
        raise NotFound(f"upstream {name!r} not found")
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(row, field, value.rstrip("/") if field == "base_url" else value)
    row.updated_at = datetime.now(UTC)
    session.add(row)
    bump_version(session, name=UPSTREAMS_REGISTRY)
    session.flush()
    return _public(row)


def delete_upstream(*, session: Session, name: str) -> None:
    row = session.get(Upstream, name)
    if row is None:
        raise NotFound(f"upstream {name!r} not found")
    session.delete(row)
    bump_version(session, name=UPSTREAMS_REGISTRY)


def make_client(
    settings: Settings, http: aiohttp.ClientSession, *, base_url: str, api_key: str | None
) -> OpenRouterClient:
    """A client on the process's connection pool with the configured timeout and retries."""
    p = settings.providers
    return OpenRouterClient(
        base_url=base_url,
        api_key=api_key,
        app_url=settings.openrouter.app_url,
        app_title=settings.openrouter.app_title,
        timeout_s=p.upstream_timeout_s,
        retry=RetryPolicy(
            max_attempts=p.retry_max_attempts,
            max_total_s=p.retry_max_total_s,
            backoff_s=p.retry_backoff_s,
            max_backoff_s=max(p.retry_backoff_s, p.retry_max_total_s / 2),
        ),
        session=http,
    )


class UpstreamRegistry:
    """One client per enabled upstream (all on the process's connection pool)."""

    def __init__(self, settings: Settings, http: aiohttp.ClientSession, default: OpenRouterClient):
        self.settings = settings
        self.http = http
        self.default = default
        self._routes: list[tuple[str, str, OpenRouterClient]] = []

    def load(self, session: Session) -> None:
        """Rebuild from the database (at start-up and after every change)."""
        routes: list[tuple[str, str, OpenRouterClient]] = []
        for row in session.exec(select(Upstream).where(col(Upstream.enabled))):
            client = make_client(
                self.settings, self.http, base_url=row.base_url, api_key=row.api_key
            )
            routes.extend((prefix, row.name, client) for prefix in row.model_prefixes)
        self._routes = sorted(routes, key=lambda r: len(r[0]), reverse=True)

    def client_for(self, model: str | None) -> tuple[str, OpenRouterClient]:
        """The upstream for ``model``: longest matching prefix, else the configured one."""
        if model:
            for prefix, name, client in self._routes:
                if model.startswith(prefix):
                    return name, client
        return DEFAULT, self.default
