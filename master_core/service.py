"""master_core's domain logic: fleet status aggregation."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from master_core.schemas import FleetStatus, ServiceHealth
from services.kit.client import ClientPool
from services.kit.config import Settings
from services.kit.manifest import SERVICE_NAMES

STATUS_TIMEOUT_S = 3.0


async def _one_status(pool: ClientPool, name: str, url: str) -> tuple[str, ServiceHealth]:
    try:
        async with pool.session.get(
            url + "/status", timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)
        ) as resp:
            raw = await resp.read()
            if resp.status != 200:
                return name, ServiceHealth(ok=False, url=url, error=f"HTTP {resp.status}")
            return name, ServiceHealth(ok=True, url=url, status=json.loads(raw))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return name, ServiceHealth(ok=False, url=url, error=exc.__class__.__name__)


async def fleet_status(
    *, pool: ClientPool, settings: Settings, own: dict[str, object]
) -> FleetStatus:
    """Every service's /status, asked concurrently; master_core reports itself directly."""
    others = [n for n in SERVICE_NAMES if n != "master_core"]
    results = dict(
        await asyncio.gather(*(_one_status(pool, n, settings.service(n).base_url) for n in others))
    )
    results["master_core"] = ServiceHealth(ok=True, url=settings.master_core.base_url, status=own)
    return FleetStatus(ok=all(h.ok for h in results.values()), services=results)
