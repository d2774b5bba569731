"""``create_app(slice)``: the FastAPI service every slice and master_core runs on."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

import aiohttp
import anyio
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.kit.client import ClientPool
from services.kit.config import ConfigError, Settings, load_settings
from services.kit.context import INTERNAL_TOKEN_HEADER, request_id_var
from services.kit.database import SliceDatabase, UnitOfWork
from services.kit.errors import SliceError, Unauthorized, envelope
from services.kit.logging import configure_logging
from services.kit.manifest import load_manifest
from services.kit.metrics import ServiceMetrics
from services.kit.middleware import RequestMiddleware
from services.kit.outbox import OutboxRelay, ensure_outbox
from services.kit.plugins import plugin_manager
from services.kit.slice_base import (
    AtomicSlice,
    DependencyStatus,
    ImprovementFeedback,
    ImprovementPlan,
    SliceCapabilities,
    SliceContext,
    SliceStatus,
)

log = structlog.get_logger("kit")


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in
# its threadpool, a thread hop per dependency per request.
async def get_slice(request: Request) -> AtomicSlice:
    slice_: AtomicSlice = request.app.state.slice
    return slice_


async def get_context(request: Request) -> SliceContext:
    context: SliceContext = request.app.state.slice.context
    return context


SliceDep = Annotated[AtomicSlice, Depends(get_slice)]
ContextDep = Annotated[SliceContext, Depends(get_context)]


def get_unit_of_work(request: Request) -> Iterator[UnitOfWork]:
    """The request's unit of work: committed when the handler returns (before the response
    is sent), rolled back if it raises, its after-commit callbacks run in between. GET and
    HEAD only read."""
    write = request.method not in ("GET", "HEAD")
    db: SliceDatabase = request.app.state.slice.context.db
    with db.unit(write=write) as uow:
        yield uow


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]


async def get_db_session(uow: UnitOfWorkDep) -> Session:
    """The session of the request's unit of work."""
    return uow.session


DbSessionDep = Annotated[Session, Depends(get_db_session)]


async def require_internal_token(request: Request) -> None:
    """Internal routes answer only callers holding the fleet's shared token."""
    expected: str = request.app.state.internal_token
    given = request.headers.get(INTERNAL_TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized(f"missing or wrong {INTERNAL_TOKEN_HEADER} header")


def _error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        envelope(code, message, request_id_var.get(), details),
        status_code=status,
        headers=dict(headers) if headers else None,
    )


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    async def slice_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SliceError)
        if exc.status_code >= 500:
            log.warning("slice_error", code=exc.code, error=exc.message)
        return _error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return _error_response(422, "validation_error", f"invalid request: {summary}", details)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    app.add_exception_handler(SliceError, slice_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _standard_router(slice_: AtomicSlice) -> APIRouter:
    router = APIRouter(tags=["standard"])

    @router.get("/health")
    async def read_health() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok", "service": slice_.name}

    @router.get("/ready", responses={503: {"description": "a dependency is not reachable"}})
    async def read_ready(request: Request) -> JSONResponse:
        """Ready: the database and every service this one calls answer."""
        checks = await check_dependencies(slice_, request.app)
        ok = all(c.ok for c in checks.values())
        body = {"ready": ok, "checks": {k: v.model_dump() for k, v in checks.items()}}
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/status")
    async def read_status() -> SliceStatus:
        return await slice_.status()

    @router.get("/capabilities")
    async def read_capabilities(request: Request) -> SliceCapabilities:
        return slice_.capabilities(request.app.state.endpoints)

    @router.get("/metrics", response_class=Response)
    async def read_metrics() -> Response:
        """Prometheus text format (rendered in a worker thread: a slice's collectors may read
        its database)."""
        body = await anyio.to_thread.run_sync(slice_.context.metrics.render)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @router.post(
        "/improvement/feedback", status_code=202, dependencies=[Depends(require_internal_token)]
    )
    async def create_feedback(feedback: ImprovementFeedback) -> dict[str, int]:
        """Record an observation for the next improvement plan."""
        return {"feedback": await slice_.record_feedback(feedback)}

    @router.get("/improvement/plan", dependencies=[Depends(require_internal_token)])
    async def read_improvement_plan() -> ImprovementPlan:
        return await slice_.plan_improvement()

    return router


async def check_dependencies(slice_: AtomicSlice, app: FastAPI) -> dict[str, DependencyStatus]:
    """The database, then each service in slice.yaml's ``calls``, via its /health."""
    ctx = slice_.context
    checks: dict[str, DependencyStatus] = {}
    db_ok = await anyio.to_thread.run_sync(ctx.db.ping)
    checks["database"] = DependencyStatus(
        ok=db_ok, detail=None if db_ok else "database unreachable"
    )
    for name in ctx.manifest.calls:
        url = ctx.settings.service(name).base_url + "/health"
        try:
            async with ctx.pool.session.get(url, timeout=_short_timeout()) as resp:
                checks[name] = DependencyStatus(ok=resp.status == 200, detail=f"HTTP {resp.status}")
        except Exception as exc:
            checks[name] = DependencyStatus(ok=False, detail=f"{exc.__class__.__name__} at {url}")
    return checks


def _short_timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=2)


def open_database(slice_: AtomicSlice, settings: Settings) -> SliceDatabase:
    """The slice's database from its configured URL, migrated to head."""
    url = settings.service(slice_.name).database_url
    assert url is not None  # filled in by Settings
    db = SliceDatabase(url, metadata=slice_.metadata(), versions_dir=slice_.migrations_dir())
    db.migrate()
    return db


def create_app(slice_: AtomicSlice, settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app of a slice: standard endpoints, middleware, errors, lifespan."""
    settings = settings or load_settings()
    manifest = load_manifest(slice_.name)
    if settings.internal_token is None:
        raise ConfigError(
            "internal_token: not set; set REFACTORBOT_INTERNAL_TOKEN (the fleet runner does)"
        )
    token = settings.internal_token.get_secret_value()
    svc = settings.service(slice_.name)
    metrics = ServiceMetrics(slice_.name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(slice_.name, settings.log_level, settings.logging)
        assert svc.database_url is not None
        db = SliceDatabase(
            svc.database_url, metadata=slice_.metadata(), versions_dir=slice_.migrations_dir()
        )
        await anyio.to_thread.run_sync(db.migrate)
        pool = ClientPool(
            caller=slice_.name,
            token=token,
            timeout_s=settings.client.timeout_s,
            connect_timeout_s=settings.client.connect_timeout_s,
            pool_size=settings.client.pool_size,
            retries=settings.client.retries,
        )
        ctx = SliceContext(manifest=manifest, settings=settings, db=db, pool=pool, metrics=metrics)
        await anyio.to_thread.run_sync(ensure_outbox, db)
        relay = None
        sink = plugin_manager().hook.refactorbot_event_sink(settings=settings, service=slice_.name)
        if sink is not None:
            relay = OutboxRelay(db, pool, sink, metrics.registry)
            ctx.extras["outbox"] = relay
            relay.start()
        await slice_.startup(ctx)
        log.info("started", version=manifest.version, port=svc.port, database=db.safe_url)
        try:
            yield
        finally:
            await slice_.shutdown()
            if relay is not None:
                await relay.stop()
            await pool.close()
            db.dispose()
            log.info("stopped")

    app = FastAPI(
        title=f"RefactorBot {manifest.name}",
        version=manifest.version,
        description=manifest.description,
        lifespan=lifespan,
    )
    app.state.slice = slice_
    app.state.internal_token = token
    install_error_handlers(app)
    app.include_router(_standard_router(slice_))
    domain_deps = [Depends(require_internal_token)] if slice_.internal_auth else []
    routers = slice_.routers()
    for router in routers:
        app.include_router(router, dependencies=domain_deps)
    app.state.endpoints = sorted(
        f"{method} {route.path}"
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods or ())
    )
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        max_body_bytes=manifest.quotas.max_body_bytes,
        default_timeout_s=manifest.quotas.request_timeout_s,
    )
    return app
