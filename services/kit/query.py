"""Bounds for query parameters that reach SQL, so no number overflows SQLite's 64 bits, and
the one pagination dependency every listing route uses.

``PageDep`` is ``?limit=`` (1..1000, default 100) and ``?offset=`` (0..MAX_OFFSET, default
0) as a :class:`Page`; a route with other bounds builds its own with
``Annotated[Page, Depends(pagination(default=50))]``, and a route that pages by a cursor
of its own (``after_seq``) or only ranks (search) takes ``pagination(..., offset=False)``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the parameters of the
# functions ``pagination`` builds from their annotations, which name its local bounds.
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

MAX_OFFSET = 1_000_000_000  # pagination offsets
MAX_SEQ = 2**62  # sequence numbers and ids compared in SQL
MAX_PAGE = 1_000_000  # page sizes before a slice's own (smaller) cap applies


@dataclass(frozen=True, slots=True)
class Page:
    """How many rows a listing returns (``limit``) and how many it skips (``offset``)."""

    limit: int
    offset: int = 0


def pagination(
    *, default: int = 100, most: int = 1000, offset: bool = True, description: str | None = None
) -> Callable[..., Awaitable[Page]]:
    """A dependency reading ``limit`` (1..``most``, ``default`` when absent) and, with
    ``offset``, ``offset`` (0..MAX_OFFSET, default 0) from the query string."""
    limit_query = Query(ge=1, le=most, description=description)
    if offset:

        async def page_with_offset(
            limit: Annotated[int, limit_query] = default,
            offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        ) -> Page:
            return Page(limit, offset)

        return page_with_offset

    async def page_of_limit(limit: Annotated[int, limit_query] = default) -> Page:
        return Page(limit)

    return page_of_limit


PageDep = Annotated[Page, Depends(pagination())]
