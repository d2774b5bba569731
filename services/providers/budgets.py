"""Budgets: reserve a call's worst-case cost before it goes out, settle the real cost after.

Every applicable budget (global, the calling slice's, the API key's) is reserved in one
transaction with guarded updates (``spent + reserved + amount <= limit``), so concurrent
calls can never overspend: a call that does not fit is refused with 402 before it costs
anything. Money is kept in integer nano-USD, so sums are exact.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import CursorResult, and_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from openrouter_gateway import ModelPrice
from services.kit.database import SliceDatabase
from services.kit.errors import BadRequest, Conflict, NotFound, SliceError
from services.providers.models import Budget, BudgetReservation, BudgetWindow
from services.providers.schemas import BudgetCreate, BudgetPublic, BudgetUpdate

NANO = Decimal(1_000_000_000)


class BudgetExceeded(SliceError):
    status_code = 402
    code = "budget_exceeded"


def to_nusd(usd: float | Decimal) -> int:
    """USD to integer nano-USD, rounding up (a reservation never under-counts)."""
    return int((Decimal(str(usd)) * NANO).to_integral_value(rounding="ROUND_CEILING"))


def to_usd(nusd: int) -> float:
    return float(Decimal(nusd) / NANO)


def window_start(window: str, now: datetime) -> datetime:
    """Start of the budget window containing ``now``, in UTC."""
    t = now.astimezone(UTC)
    if window == "daily":
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "monthly":
        return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Reservation:
    id: str
    amount_nusd: int
    windows: list[tuple[str, datetime]]


# --- CRUD --------------------------------------------------------------------------------------
def _public(session: Session, row: Budget, now: datetime) -> BudgetPublic:
    start = window_start(row.window, now)
    win = session.get(BudgetWindow, (row.id, start))
    spent, reserved = (win.spent_nusd, win.reserved_nusd) if win else (0, 0)
    return BudgetPublic(
        id=row.id,
        scope=row.scope,
        subject=row.subject or None,
        window=row.window,
        limit_usd=to_usd(row.limit_nusd),
        window_start=start,
        spent_usd=to_usd(spent),
        reserved_usd=to_usd(reserved),
        remaining_usd=to_usd(max(0, row.limit_nusd - spent - reserved)),
        created_at=row.created_at,
    )


def create_budget(*, session: Session, data: BudgetCreate) -> BudgetPublic:
    """A new budget; one per (scope, subject, window)."""
    now = datetime.now(UTC)
    row = Budget(
        id=uuid.uuid4().hex[:16],
        scope=data.scope,
        subject=data.subject or "",
        window=data.window,
        limit_nusd=to_nusd(data.limit_usd),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"a {data.window} budget for {data.scope} {data.subject or ''} exists already".replace(
                "  ", " "
            )
        ) from exc
    return _public(session, row, now)


def get_budget(*, session: Session, budget_id: str) -> BudgetPublic:
    row = session.get(Budget, budget_id)
    if row is None:
        raise NotFound(f"budget {budget_id!r} not found")
    return _public(session, row, datetime.now(UTC))


def list_budgets(*, session: Session) -> list[BudgetPublic]:
    now = datetime.now(UTC)
    rows = session.exec(select(Budget).order_by(col(Budget.created_at))).all()
    return [_public(session, r, now) for r in rows]


def update_budget(*, session: Session, budget_id: str, data: BudgetUpdate) -> BudgetPublic:
    row = session.get(Budget, budget_id)
    if row is None:
        raise NotFound(f"budget {budget_id!r} not found")
    row.limit_nusd = to_nusd(data.limit_usd)
    row.updated_at = datetime.now(UTC)
    session.add(row)
    session.flush()
    return _public(session, row, datetime.now(UTC))


def delete_budget(*, session: Session, budget_id: str) -> None:
    row = session.get(Budget, budget_id)
    if row is None:
        raise NotFound(f"budget {budget_id!r} not found")
    session.execute(
        BudgetWindow.__table__.delete().where(  # type: ignore[attr-defined]
            BudgetWindow.budget_id == budget_id
        )
    )
    session.delete(row)


# --- reserve and settle ------------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetRule:
    """A budget's definition, detached from the database (what the cache holds)."""

    id: str
    scope: str
    subject: str
    window: str
    limit_nusd: int

    def governs(self, caller: str | None, api_key_id: str | None) -> bool:
        return (
            self.scope == "global"
            or (self.scope == "slice" and caller is not None and self.subject == caller)
            or (self.scope == "api_key" and api_key_id is not None and self.subject == api_key_id)
        )


def load_rules(session: Session) -> list[BudgetRule]:
    return [
        BudgetRule(b.id, b.scope, b.subject, b.window, b.limit_nusd)
        for b in session.exec(select(Budget)).all()
    ]


def applicable(session: Session, *, caller: str | None, api_key_id: str | None) -> list[BudgetRule]:
    """The budgets that govern a call from ``caller`` paid by ``api_key_id``."""
    return [r for r in load_rules(session) if r.governs(caller, api_key_id)]


class BudgetCache:
    """Budget definitions in memory, so a call that no budget governs costs no query.

    Changes made through this process apply at once; changes made by another replica within
    ``ttl_s`` (the spend itself is always read from the database when reserving).
    """

    def __init__(self, db: SliceDatabase, ttl_s: float) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._rules: list[BudgetRule] | None = None
        self._loaded_at = 0.0

    def invalidate(self) -> None:
        self._rules = None

    async def governing(self, caller: str | None, api_key_id: str | None) -> list[BudgetRule]:
        now = time.monotonic()
        if self._rules is None or now - self._loaded_at > self.ttl_s:
            self._rules = await self.db.run(load_rules, write=False)
            self._loaded_at = now
        return [r for r in self._rules if r.governs(caller, api_key_id)]


def reserve(
    *,
    session: Session,
    amount_nusd: int,
    governing: list[BudgetRule],
    now: datetime | None = None,
) -> Reservation | None:
    """Hold ``amount_nusd`` on every governing budget, or raise BudgetExceeded (402).

    None when no budget governs. Runs in the caller's transaction: commit it to keep the
    hold, roll it back (any exception does) to leave every budget untouched.
    """
    now = now or datetime.now(UTC)
    windows: list[tuple[str, datetime]] = []
    for budget in governing:
        start = window_start(budget.window, now)
        # The first statement writes, so SQLite takes its write lock before anything is read.
        _ensure_window(session, budget.id, start)
        result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(BudgetWindow)
            .where(
                and_(
                    col(BudgetWindow.budget_id) == budget.id,
                    col(BudgetWindow.window_start) == start,
                    col(BudgetWindow.spent_nusd) + col(BudgetWindow.reserved_nusd) + amount_nusd
                    <= budget.limit_nusd,
                )
            )
            .values(reserved_nusd=col(BudgetWindow.reserved_nusd) + amount_nusd)
        )
        if result.rowcount != 1:
            win = session.get(BudgetWindow, (budget.id, start))
            spent = win.spent_nusd if win else 0
            reserved = win.reserved_nusd if win else 0
            who = "everyone" if budget.scope == "global" else f"{budget.scope} {budget.subject}"
            raise BudgetExceeded(
                f"{budget.window} budget for {who} would be exceeded: limit "
                f"${to_usd(budget.limit_nusd):.6f}, spent ${to_usd(spent):.6f}, held for calls "
                f"in flight ${to_usd(reserved):.6f}, this call may cost up to "
                f"${to_usd(amount_nusd):.6f}",
                details={"budget_id": budget.id},
            )
        windows.append((budget.id, start))
    if not windows:
        return None
    res = Reservation(id=uuid.uuid4().hex, amount_nusd=amount_nusd, windows=windows)
    session.add(
        BudgetReservation(
            id=res.id,
            created_at=now,
            amount_nusd=amount_nusd,
            windows=[[b, s.isoformat()] for b, s in windows],
        )
    )
    return res


def worst_case_nusd(
    *,
    model: str,
    payload: dict[str, Any],
    max_tokens: int,
    price_of: Callable[[str], ModelPrice | None],
) -> int:
    """The most a call can cost: every UTF-8 byte of the prompt a token (no tokenizer makes
    fewer bytes per token), plus ``max_tokens`` of completion, plus any per-request price."""
    price = price_of(model)
    if price is None:
        raise BadRequest(
            f"model {model!r} has no known price, so its budget cannot be enforced; "
            "pick a model from GET /v1/models"
        )
    prompt_bytes = len(
        json.dumps(
            {"messages": payload.get("messages"), "tools": payload.get("tools")},
            ensure_ascii=False,
        ).encode()
    )
    worst = price.prompt * prompt_bytes + price.completion * max_tokens + price.request
    return to_nusd(worst)


def _ensure_window(session: Session, budget_id: str, start: datetime) -> None:
    """Create the window's row unless it exists (insert-or-ignore, race-free)."""
    values: dict[str, Any] = {
        "budget_id": budget_id,
        "window_start": start,
        "spent_nusd": 0,
        "reserved_nusd": 0,
    }
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(sqlite_insert(BudgetWindow).values(**values).on_conflict_do_nothing())
    elif dialect == "postgresql":
        session.execute(pg_insert(BudgetWindow).values(**values).on_conflict_do_nothing())
    elif session.get(BudgetWindow, (budget_id, start)) is None:
        session.add(BudgetWindow(budget_id=budget_id, window_start=start))
        session.flush()


def settle(*, session: Session, reservation: Reservation, actual_nusd: int) -> None:
    """Release the hold and book what the call really cost (0 for a failed call)."""
    for budget_id, start in reservation.windows:
        session.execute(
            update(BudgetWindow)
            .where(
                col(BudgetWindow.budget_id) == budget_id, col(BudgetWindow.window_start) == start
            )
            .values(
                reserved_nusd=col(BudgetWindow.reserved_nusd) - reservation.amount_nusd,
                spent_nusd=col(BudgetWindow.spent_nusd) + actual_nusd,
            )
        )
    session.execute(
        BudgetReservation.__table__.delete().where(  # type: ignore[attr-defined]
            BudgetReservation.id == reservation.id
        )
    )


def release_stale(*, session: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """Release holds of calls that never settled (the process died mid-call)."""
    cutoff = (now or datetime.now(UTC)) - older_than
    stale = session.exec(
        select(BudgetReservation).where(col(BudgetReservation.created_at) < cutoff)
    ).all()
    for row in stale:
        settle(
            session=session,
            actual_nusd=0,
            reservation=Reservation(
                id=row.id,
                amount_nusd=row.amount_nusd,
                windows=[(b, datetime.fromisoformat(s)) for b, s in row.windows],
            ),
        )
    return len(stale)
