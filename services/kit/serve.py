"""Start one service in the foreground: ``python -m services.<name>`` or ``refactorbot serve``
(by hand, without a configured internal token: one made for the process, and said so)."""

from __future__ import annotations

import importlib
import secrets
import sys

import uvicorn
from pydantic import SecretStr

from services.kit.config import ConfigError, load_settings
from services.kit.manifest import ManifestError, service_entry, service_names
from services.kit.slice_base import AtomicSlice

MADE_UP_INTERNAL_KEY_HELP = (
    "refactorbot {name}: internal_token is not set, so this process made its own: other\n"
    "  services cannot call this one's internal routes, nor it theirs. To run services by\n"
    "  hand together, give every one the same token, e.g.\n"
    "    export REFACTORBOT_INTERNAL_TOKEN=$(python3 -c "
    "'import secrets; print(secrets.token_hex())')\n"
    "  (`refactorbot up` / `make run` makes one for the whole fleet)."
)


def load_slice(name: str) -> AtomicSlice:
    """Import the service's ``slice`` module and build its AtomicSlice."""
    module = importlib.import_module(f"{service_entry(name).package}.slice")
    slice_: AtomicSlice = module.create_slice()
    return slice_


def serve(name: str) -> None:
    """Run the named service with uvicorn until stopped; exit 2 on a bad configuration."""
    if name not in service_names():
        sys.exit(f"unknown service {name!r}; one of: {', '.join(service_names())}")
    from services.kit.app import create_app

    try:
        settings = load_settings()
        if settings.internal_token is None:
            print(MADE_UP_INTERNAL_KEY_HELP.format(name=name), file=sys.stderr, flush=True)
            settings.internal_token = SecretStr(secrets.token_urlsafe(32))
        app = create_app(load_slice(name), settings)
    except (ConfigError, ManifestError) as exc:
        print(f"refactorbot {name}: {exc}", file=sys.stderr)
        sys.exit(2)
    svc = settings.service(name)
    assert svc.port is not None
    uvicorn.run(
        app,
        host=svc.host,
        port=svc.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        server_header=False,
        backlog=2048,
    )
