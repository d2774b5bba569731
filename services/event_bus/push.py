"""Push delivery: a group with a webhook gets each event POSTed to it. A 2xx answer acks
the event; anything else (or no answer) nacks it with a growing delay, so it is retried and
eventually dead-lettered like a pulled event. Each push is signed:

    X-RefactorBot-Timestamp: <unix seconds>
    X-RefactorBot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

so the receiver can check it came from the bus and is fresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import aiohttp
import structlog

from services.event_bus import service
from services.event_bus.config import EventBusSettings
from services.kit.database import SliceDatabase

log = structlog.get_logger("event_bus.push")
BATCH = 20


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Pusher:
    def __init__(
        self, db: SliceDatabase, http: aiohttp.ClientSession, settings: EventBusSettings
    ) -> None:
        self.db, self.http, self.settings = db, http, settings

    async def run_forever(self, every_s: float = 0.2) -> None:
        while True:
            try:
                busy = await self.once()
            except Exception:
                log.exception("push_failed")
                busy = False
            if not busy:
                await asyncio.sleep(every_s)

    async def once(self) -> bool:
        """One round over the push groups; whether anything was pushed."""
        groups = await self.db.run(service.push_groups, write=False)
        results = await asyncio.gather(*(self._group(*g) for g in groups))
        return any(results)

    async def _group(self, topic: str, group: str, url: str, secret: str | None) -> bool:
        events = await self.db.run(
            lambda s: service.pull(
                s, topic, group, most=BATCH, consumer="push", settings=self.settings
            )
        )
        if not events:
            return False
        outcomes = await asyncio.gather(*(self._send(url, secret, topic, e) for e in events))
        ok = [e.seq for e, good in zip(events, outcomes, strict=True) if good is None]
        failed = [(e, why) for e, why in zip(events, outcomes, strict=True) if why is not None]
        if ok:
            await self.db.run(lambda s: service.ack(s, topic, group, ok))
        for event, why in failed:
            delay = min(30.0, 0.5 * 2 ** (event.attempt - 1))
            await self.db.run(
                lambda s, e=event, w=why, d=delay: service.nack(  # type: ignore[misc]
                    s, topic, group, [e.seq], delay_s=d, error=w, settings=self.settings
                )
            )
        return True

    async def _send(
        self, url: str, secret: str | None, topic: str, event: service.Delivery
    ) -> str | None:
        body = json.dumps({"topic": topic, **event.model_dump(mode="json")}).encode()
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-RefactorBot-Timestamp": stamp}
        if secret:
            headers["X-RefactorBot-Signature"] = signature(secret, stamp, body)
        try:
            async with self.http.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as resp:
                if 200 <= resp.status < 300:
                    return None
                return f"webhook answered {resp.status}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            return f"webhook unreachable: {exc.__class__.__name__}"
