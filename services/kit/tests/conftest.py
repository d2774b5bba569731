from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from services.kit.app import ContextDep, create_app
from services.kit.client import SliceClient
from services.kit.context import DEADLINE_HEADER, remaining_s
from services.kit.slice_base import AtomicSlice
from services.kit.testing import serve_app, settings_for_tests


class Echo(BaseModel):
    text: str = Field(min_length=1, max_length=20)


def demo_router() -> APIRouter:
    router = APIRouter(prefix="/v1/demo")
    state = {"flaky": 0}

    @router.post("/echo")
    async def echo(body: Echo) -> Echo:
        return body

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals that must not leak")

    @router.get("/headers")
    async def headers(
        x_request_id: Annotated[str | None, Header()] = None,
        x_deadline_ms: Annotated[str | None, Header(alias=DEADLINE_HEADER)] = None,
        x_caller: Annotated[str | None, Header()] = None,
    ) -> dict[str, str | float | None]:
        return {
            "request_id": x_request_id,
            "deadline_ms": x_deadline_ms,
            "caller": x_caller,
            "remaining_s": remaining_s(),
        }

    @router.get("/flaky")
    async def flaky(fail: int) -> dict[str, int]:
        state["flaky"] += 1
        if state["flaky"] <= fail:
            from services.kit.errors import ServiceUnavailable

            raise ServiceUnavailable("try again")
        return {"calls": state["flaky"]}

    @router.post("/flaky-post")
    async def flaky_post() -> dict[str, int]:
        state["flaky"] += 1
        from services.kit.errors import ServiceUnavailable

        raise ServiceUnavailable("always down")

    @router.get("/missing")
    async def missing() -> None:
        from services.kit.errors import NotFound

        raise NotFound("thing 'x' not found")

    @router.get("/relay")
    async def relay(ctx: ContextDep) -> dict[str, object]:
        """Calls /v1/demo/headers on itself through the kit client."""
        client = SliceClient(ctx.pool, ctx.settings.tools.base_url)
        return await client.request("GET", "/v1/demo/headers")

    return router


class DemoSlice(AtomicSlice):
    """Borrows the tools slice's manifest and (empty) migrations; adds demo routes."""

    name = "tools"

    def routers(self) -> list[APIRouter]:
        return [demo_router()]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    from services.kit.testing import free_port

    port = free_port()
    settings = settings_for_tests(tmp_path, tools={"port": port})
    with serve_app(create_app(DemoSlice(), settings), port=port) as url:
        yield url
