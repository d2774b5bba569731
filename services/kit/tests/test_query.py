"""The pagination dependency: one declaration, each route's own default and maximum."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI

from services.kit.query import MAX_OFFSET, Page, PageDep, pagination


def _params(app: FastAPI, path: str) -> dict[str, dict[str, Any]]:
    op = app.openapi()["paths"][path]["get"]
    return {p["name"]: p["schema"] for p in op["parameters"]}


def test_pagination_declares_the_routes_bounds_and_defaults() -> None:
    app = FastAPI()

    @app.get("/default")
    async def default(page: PageDep) -> Page:
        return page

    @app.get("/search")
    async def search(
        page: Annotated[Page, Depends(pagination(default=20, most=100, offset=False))],
    ) -> Page:
        return page

    assert _params(app, "/default") == {
        "limit": {
            "type": "integer",
            "maximum": 1000,
            "minimum": 1,
            "default": 100,
            "title": "Limit",
        },
        "offset": {
            "type": "integer",
            "maximum": MAX_OFFSET,
            "minimum": 0,
            "default": 0,
            "title": "Offset",
        },
    }
    assert _params(app, "/search") == {
        "limit": {"type": "integer", "maximum": 100, "minimum": 1, "default": 20, "title": "Limit"}
    }


async def test_pagination_reads_the_query_values() -> None:
    assert await pagination()(limit=7, offset=3) == Page(7, 3)
    assert await pagination(default=5, offset=False)() == Page(5, 0)
