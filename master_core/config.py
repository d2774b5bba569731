"""The gateway's settings: ``master_core:`` in the config, ``REFACTORBOT_MASTER_CORE__*``."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.kit.config import ServiceSettings


class MasterCoreSettings(ServiceSettings):
    admin_api_key: SecretStr | None = Field(
        None, description="First admin API key; stored hashed at start-up"
    )


#: The section this service adds to the fleet's Settings (found by the kit).
SETTINGS_MODEL = MasterCoreSettings
