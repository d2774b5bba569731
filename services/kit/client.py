"""The typed client base every service uses to call another.

One ``aiohttp.ClientSession`` per process (``ClientPool``), so connections are kept alive
and reused; each call carries the internal token, the caller's request id and what is
left of its deadline; only idempotent calls are retried, and never past the deadline.
aiohttp was chosen by measurement (``make bench``): a hop through it is several times
faster than through a default ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel

from services.kit.context import (
    CALLER_HEADER,
    DEADLINE_HEADER,
    INTERNAL_TOKEN_HEADER,
    REQUEST_ID_HEADER,
    new_request_id,
    remaining_s,
    request_id_var,
)
from services.kit.errors import DeadlineExceeded, ServiceUnavailable, SliceError, UpstreamError

M = TypeVar("M", bound=BaseModel)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})


class ClientPool:
    """The process's one connection pool; created at start-up, closed at shutdown."""

    def __init__(
        self,
        *,
        caller: str,
        token: str,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        pool_size: int = 100,
        retries: int = 2,
    ) -> None:
        self.caller = caller
        self.token = token
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.pool_size = pool_size
        self.retries = retries
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.pool_size,
                limit_per_host=self.pool_size,
                keepalive_timeout=30,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                json_serialize=json.dumps,
                skip_auto_headers=("User-Agent",),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class SliceCallError(SliceError):
    """A call to another service failed; carries the status to give our own caller."""

    def __init__(self, service: str, status: int, code: str, message: str, details: Any = None):
        super().__init__(message, details=details, code=code, status_code=status)
        self.service = service


class SliceClient:
    """Base of every slice's typed client: ``request`` plus JSON-to-model helpers."""

    service = "slice"
    #: A call's time limit unless the caller gives one (None: the pool's); a subclass sets
    #: what its slice allows a request (its slice.yaml's quotas.request_timeout_s).
    default_timeout_s: float | None = None

    def __init__(self, pool: ClientPool, base_url: str, *, timeout_s: float | None = None) -> None:
        """``timeout_s``: this client's default per call (else ``default_timeout_s``, else
        the pool's); a caller's deadline, when shorter, always wins."""
        self.pool = pool
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s if timeout_s is not None else self.default_timeout_s

    def _headers(self, timeout: float) -> dict[str, str]:
        return {
            INTERNAL_TOKEN_HEADER: self.pool.token,
            REQUEST_ID_HEADER: request_id_var.get() or new_request_id(),
            CALLER_HEADER: self.pool.caller,
            DEADLINE_HEADER: str(max(1, int(timeout * 1000))),  # 0 would be refused
        }

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        idempotent: bool | None = None,
        headers: dict[str, str] | None = None,
        decode: bool = True,
    ) -> Any:
        """Call ``method path`` and return the decoded JSON body (None for 204); with
        ``decode=False`` the body's bytes, for a caller that validates them itself
        (``Model.model_validate_json``: one parse instead of two)."""
        pool = self.pool
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        start = time.monotonic()
        budget = timeout_s or self.timeout_s or pool.timeout_s
        left = remaining_s()
        if left is not None:
            budget = min(budget, left)
        deadline = start + budget
        data = None if json_body is None else json.dumps(json_body)
        url = self.base_url + path
        attempt = 0
        while True:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise DeadlineExceeded(f"deadline exceeded calling {self.service} {method} {path}")
            all_headers = self._headers(timeout)
            if headers:
                all_headers.update(headers)
            if data is not None:
                all_headers["Content-Type"] = "application/json"
            try:
                async with pool.session.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    headers=all_headers,
                    timeout=aiohttp.ClientTimeout(
                        total=timeout, sock_connect=min(timeout, pool.connect_timeout_s)
                    ),
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                if not idempotent or attempt >= pool.retries or time.monotonic() >= deadline:
                    if isinstance(exc, asyncio.TimeoutError) or time.monotonic() >= deadline:
                        raise DeadlineExceeded(
                            f"{self.service} did not answer {method} {path} in time"
                        ) from exc
                    reason = exc.__class__.__name__
                    raise ServiceUnavailable(
                        f"{self.service} is unreachable at {self.base_url}: {reason}"
                    ) from exc
                attempt += 1
                await asyncio.sleep(min(0.05 * 2**attempt, max(0.0, deadline - time.monotonic())))
                continue
            if status < 400:
                if not decode:
                    return raw
                return json.loads(raw) if raw else None
            if idempotent and status in RETRY_STATUSES and attempt < pool.retries:
                attempt += 1
                await asyncio.sleep(min(0.05 * 2**attempt, max(0.0, deadline - time.monotonic())))
                continue
            raise self._error(status, raw)

    def _error(self, status: int, raw: bytes) -> SliceError:
        try:
            err = json.loads(raw)["error"]
            code, message, details = err["code"], err["message"], err.get("details")
        except (ValueError, KeyError, TypeError):
            code, message, details = "upstream_error", raw[:200].decode(errors="replace"), None
        if 400 <= status < 500:
            # The caller's own mistake (unknown id, bad input): pass it through unchanged.
            return SliceCallError(self.service, status, code, message, details)
        return UpstreamError(f"{self.service} failed ({status}): {message}")

    async def forward(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        params: list[tuple[str, str]],
        timeout_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, str]:
        """Pass a request through unchanged; return status, body and content type.

        For gateways (master_core's admin routes): the status is the service's own."""
        budget = timeout_s or self.timeout_s or self.pool.timeout_s
        left = remaining_s()
        if left is not None:
            budget = min(budget, left)
        if budget <= 0:
            raise DeadlineExceeded(f"deadline exceeded calling {self.service} {method} {path}")
        sent = {**self._headers(budget), **(headers or {})}
        if body:
            sent["Content-Type"] = "application/json"
        try:
            async with self.pool.session.request(
                method,
                self.base_url + path,
                data=body or None,
                params=params,
                headers=sent,
                timeout=aiohttp.ClientTimeout(total=budget),
            ) as resp:
                return resp.status, await resp.read(), resp.content_type
        except TimeoutError as exc:
            raise DeadlineExceeded(
                f"{self.service} did not answer {method} {path} in time"
            ) from exc
        except aiohttp.ClientConnectionError as exc:
            raise ServiceUnavailable(f"{self.service} is unreachable at {self.base_url}") from exc

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        json_body: Any,
        timeout_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a streamed answer (Server-Sent Events); an error status raises as
        :meth:`request` would. Never retried: part of it may already have been used."""
        budget = timeout_s or self.timeout_s or self.pool.timeout_s
        left = remaining_s()
        if left is not None:
            budget = min(budget, left)
        if budget <= 0:
            raise DeadlineExceeded(f"deadline exceeded calling {self.service} {method} {path}")
        all_headers = {**self._headers(budget), "Content-Type": "application/json"}
        all_headers.update(headers or {})
        try:
            async with self.pool.session.request(
                method,
                self.base_url + path,
                data=json.dumps(json_body),
                headers=all_headers,
                timeout=aiohttp.ClientTimeout(
                    total=budget, sock_connect=min(budget, self.pool.connect_timeout_s)
                ),
            ) as resp:
                if resp.status >= 400:
                    raise self._error(resp.status, await resp.read())
                yield resp
        except TimeoutError as exc:
            message = f"{self.service} did not answer {method} {path} in time"
            raise DeadlineExceeded(message) from exc
        except aiohttp.ClientConnectionError as exc:
            raise ServiceUnavailable(f"{self.service} is unreachable at {self.base_url}") from exc

    async def get_model(self, model: type[M], path: str, **kw: Any) -> M:
        return model.model_validate(await self.request("GET", path, **kw))

    async def post_model(
        self, model: type[M], path: str, body: BaseModel | dict[str, Any], **kw: Any
    ) -> M:
        payload = (
            body.model_dump(mode="json", exclude_none=True) if isinstance(body, BaseModel) else body
        )
        return model.model_validate(await self.request("POST", path, json_body=payload, **kw))
