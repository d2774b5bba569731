"""The API key this machine knows about, for the CLI and the dashboard."""

from __future__ import annotations

import os

from services.kit.config import Settings
from services.kit.manifest import gateway_name

ADMIN_KEY_FILE = "admin_api_key"
NO_KEY_HELP = (
    "no API key: set REFACTORBOT_API_KEY, or start the fleet once with `make run` to create "
    "data/admin_api_key"
)


def local_api_key(settings: Settings) -> str | None:
    """REFACTORBOT_API_KEY, else the configured admin key, else the one `make run` saved."""
    if env := os.environ.get("REFACTORBOT_API_KEY"):
        return env
    admin = getattr(settings.service(gateway_name()), "admin_api_key", None)
    if admin:
        secret: str = admin.get_secret_value()
        return secret
    path = settings.data_dir / ADMIN_KEY_FILE
    return path.read_text().strip() if path.exists() else None
