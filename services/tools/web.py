"""web_fetch: http(s) only, capped in bytes and time, and never to a private address.

The host is resolved first and every address it resolves to is checked: loopback,
private, link-local, multicast, reserved, unspecified, shared (CGNAT) and IPv4-mapped
forms of them are refused unless the host is listed in ``tools.web_fetch_allow_hosts``.
The connection then goes to one of the checked addresses (pinned), so a DNS answer that
changes between check and connect (rebinding) cannot redirect it. Each redirect is checked
the same way. The resolver and the transport are injectable, so tests never need to open a
connection to a private address to prove it is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import aiohttp

from services.tools.sandbox import NotAllowed
from services.tools.workspace import ToolFailure

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool


class Transport(Protocol):
    async def __call__(
        self, url: str, *, host: str, ip: str, port: int, max_bytes: int, timeout_s: float
    ) -> Fetched: ...


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return sorted({str(info[4][0]) for info in infos})


def refused_reason(ip: IPAddress) -> str | None:
    """Why an address may not be fetched, or None if it is a public one."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        return refused_reason(mapped)
    for attr, what in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_private", "private"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_unspecified", "unspecified"),
    ):
        if getattr(ip, attr):
            return what
    if not ip.is_global:
        return "not public"
    return None


class _PinnedResolver(aiohttp.abc.AbstractResolver):
    """aiohttp resolver that answers with the one address already checked."""

    def __init__(self, ip: str) -> None:
        self.ip = ip

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        fam = socket.AF_INET6 if ":" in self.ip else socket.AF_INET
        return [
            {
                "hostname": host,
                "host": self.ip,
                "port": port,
                "family": fam,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def aiohttp_transport(
    url: str, *, host: str, ip: str, port: int, max_bytes: int, timeout_s: float
) -> Fetched:
    connector = aiohttp.TCPConnector(resolver=_PinnedResolver(ip), use_dns_cache=False)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(
            url,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            headers={"User-Agent": "RefactorBot-web_fetch/1.0"},
        ) as resp,
    ):
        body = await resp.content.read(max_bytes + 1)
        return Fetched(
            resp.status, dict(resp.headers), body[:max_bytes], truncated=len(body) > max_bytes
        )


class WebFetcher:
    def __init__(
        self,
        *,
        allow_hosts: list[str],
        max_redirects: int,
        resolver: Resolver = system_resolver,
        transport: Transport = aiohttp_transport,
    ) -> None:
        self.allow_hosts = {h.lower().strip("[]") for h in allow_hosts}
        self.max_redirects = max_redirects
        self.resolver = resolver
        self.transport = transport

    async def check(self, url: str) -> tuple[str, str, int]:
        """The host, the checked address to connect to and the port, or a refusal."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ToolFailure(f"only http and https URLs can be fetched, not {parts.scheme!r}")
        if parts.username or parts.password:
            raise ToolFailure("URLs with credentials are not fetched")
        host = (parts.hostname or "").lower()
        if not host:
            raise ToolFailure("the URL has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ToolFailure("the URL's port is not valid") from None
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self.resolver(host, port)
            except OSError as exc:
                raise ToolFailure(f"{host} could not be resolved: {exc}") from None
        if not addresses:
            raise ToolFailure(f"{host} resolved to no address")
        if host not in self.allow_hosts:
            for a in addresses:
                reason = refused_reason(ipaddress.ip_address(a))
                if reason is not None and a not in self.allow_hosts:
                    raise NotAllowed(
                        f"{host} resolves to {a}, a {reason} address; web_fetch reaches only "
                        "public addresses unless tools.web_fetch_allow_hosts lists it"
                    )
        return host, addresses[0], port

    async def fetch(self, url: str, *, max_bytes: int, timeout_s: float) -> dict[str, Any]:
        for _hop in range(self.max_redirects + 1):
            host, ip, port = await self.check(url)
            try:
                got = await self.transport(
                    url, host=host, ip=ip, port=port, max_bytes=max_bytes, timeout_s=timeout_s
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise ToolFailure(f"fetching {url} failed: {exc.__class__.__name__}") from None
            location = got.headers.get("Location") or got.headers.get("location")
            if got.status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                continue
            ctype = got.headers.get("Content-Type") or got.headers.get("content-type") or ""
            charset = "utf-8"
            if "charset=" in ctype:
                charset = ctype.split("charset=", 1)[1].split(";")[0].strip() or "utf-8"
            try:
                text = got.body.decode(charset, errors="replace")
            except LookupError:
                text = got.body.decode("utf-8", errors="replace")
            return {
                "url": url,
                "status": got.status,
                "content_type": ctype,
                "content": text,
                "bytes": len(got.body),
                "truncated": got.truncated,
            }
        raise ToolFailure(f"more than {self.max_redirects} redirects")
