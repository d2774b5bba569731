"""Per-producer rate limits shared by every replica: one token bucket row per producer in
the slice's database, taken from with a single atomic UPDATE whose refill is computed in
SQL (the same statement on SQLite and PostgreSQL), so N replicas together allow the
configured rate, not N times it. A bucket holds at most ``rate`` tokens and refills at
``rate`` per second; a row untouched for a second is a full bucket, so the sweeper may
delete it (the table stays as small as the set of producers of the last second)."""

from __future__ import annotations

import time

from sqlalchemy import case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from services.event_bus.models import ProducerBucket
from services.kit.errors import TooManyRequests

FORGET_AFTER_S = 2.0  # a bucket is full again after 1 s; a margin for clocks of replicas


def take_tokens(
    session: Session, *, producer: str, n: int, rate: float, retry_after_s: float
) -> None:
    """Take ``n`` tokens from the producer's shared bucket, or refuse with 429."""
    now, rate = time.time(), float(rate)
    tokens, updated_at = col(ProducerBucket.tokens), col(ProducerBucket.updated_at)
    refilled = tokens + case((updated_at < now, (literal(now) - updated_at) * rate), else_=0.0)
    level = case((refilled > rate, literal(rate)), else_=refilled)
    taken = session.execute(
        update(ProducerBucket)
        .where(col(ProducerBucket.producer) == producer, level >= n)
        .values(tokens=level - n, updated_at=case((updated_at < now, now), else_=updated_at))
        .returning(col(ProducerBucket.producer))
        .execution_options(synchronize_session=False)
    ).first()
    if taken is not None:
        return
    if n <= rate and _insert_full_bucket_less(session, producer, rate - n, now):
        return
    row = session.execute(
        select(tokens, updated_at).where(col(ProducerBucket.producer) == producer)
    ).one_or_none()
    have = min(rate, row[0] + max(0.0, now - row[1]) * rate) if row else rate
    raise TooManyRequests(
        f"producer {producer!r} is over {rate:g} events per second",
        headers={"Retry-After": f"{max(retry_after_s, (n - have) / rate):.2f}"},
    )


def _insert_full_bucket_less(session: Session, producer: str, tokens: float, now: float) -> bool:
    """Create the producer's bucket (full, less what it takes now) unless a replica just
    did; whether this call created it."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    created = session.execute(
        dialect.insert(ProducerBucket)
        .values(producer=producer, tokens=tokens, updated_at=now)
        .on_conflict_do_nothing(index_elements=["producer"])
        .returning(col(ProducerBucket.producer))
    ).first()
    return created is not None


def forget_full_buckets(session: Session) -> int:
    """Delete buckets that have refilled (the same as no row); how many."""
    gone = session.execute(
        delete(ProducerBucket).where(col(ProducerBucket.updated_at) < time.time() - FORGET_AFTER_S)
    )
    return int(gone.rowcount)  # type: ignore[attr-defined]
