"""One typed configuration for the whole fleet.

The kit defines the fleet-wide sections (folders, logging, the client pool, the runner...);
each service adds its own section from its ``config.py`` (``SETTINGS_MODEL``, a
``ServiceSettings`` subclass; plain ``ServiceSettings`` without one), under its name.
``load_settings()`` composes them into one model, once per process.

Sources, strongest first: environment variables (``REFACTORBOT_`` prefix, ``__`` between
nested fields, e.g. ``REFACTORBOT_SESSION__DATABASE_URL``), then the YAML file
(``config/refactorbot.yaml`` or the path in ``REFACTORBOT_CONFIG``), then the defaults,
where each service's port comes from its ``slice.yaml``. ``OPENROUTER_API_KEY`` is also
read as ``openrouter.api_key``.
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from services.kit.manifest import ServiceEntry, discover
from services.kit.safe_yaml import UnsafeYamlError, load_yaml_file

DEFAULT_CONFIG_PATH = Path("config/refactorbot.yaml")
CONFIG_ENV = "REFACTORBOT_CONFIG"


class ConfigError(ValueError):
    """The configuration is invalid; the message names each field and its problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServiceSettings(_Section):
    """Where a service listens and which database it owns."""

    host: str = Field("127.0.0.1", description="Interface to bind")
    port: int | None = Field(None, ge=1, le=65535, description="Defaults to slice.yaml's port")
    url: str | None = Field(None, description="Base URL other services use; default from host:port")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data_dir")

    @property
    def base_url(self) -> str:
        """The URL other services call this one at."""
        if self.url:
            return self.url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"


class OpenRouterSettings(_Section):
    api_key: SecretStr | None = Field(None, description="Set to use real OpenRouter models")
    base_url: str = Field("https://openrouter.ai/api/v1", description="OpenRouter or compatible")
    app_url: str = Field("https://github.com/refactorbot/refactorbot", description="HTTP-Referer")
    app_title: str = Field("RefactorBot", description="X-OpenRouter-Title")


class SimulatorSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8199, ge=1, le=65535)
    latency_ms: float = Field(0.0, ge=0, description="Artificial delay before each answer")
    scenarios_dir: Path | None = Field(
        None, description="Folder of scenario files (YAML/JSON) added to the shipped ones"
    )
    default_scenario: str | None = Field(
        None, max_length=64, description="Scenario for requests no other scenario matched"
    )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/v1"


class DashboardSettings(_Section):
    enabled: bool = Field(True, description="Start the Streamlit dashboard with the fleet")
    host: str = "127.0.0.1"
    port: int = Field(8501, ge=1, le=65535)


class ClientSettings(_Section):
    """The connection pool every service uses to call the others."""

    timeout_s: float = Field(30.0, gt=0, description="Default total timeout of a call")
    connect_timeout_s: float = Field(3.0, gt=0)
    pool_size: int = Field(100, gt=0, description="Most open connections per process")
    retries: int = Field(2, ge=0, le=10, description="Retries of idempotent calls")


class ReplicaSettings(_Section):
    """What replicas of one slice, sharing its database, agree on."""

    registry_recheck_s: float = Field(
        0.5,
        ge=0,
        le=60,
        description="How often a replica checks whether another changed a shared registry "
        "(tools' switches, uploaded skills, upstreams, the catalog); 0: on every request",
    )


class FleetSettings(_Section):
    ready_timeout_s: float = Field(60.0, gt=0, description="Wait for every /ready at start")
    restart_backoff_s: float = Field(1.0, gt=0, description="First restart delay")
    restart_backoff_max_s: float = Field(30.0, gt=0)
    stop_timeout_s: float = Field(10.0, gt=0, description="Grace before SIGKILL on stop")
    preload: bool = Field(
        True,
        description="Fork services from one process that imported the shared code once "
        "(faster start, shared memory); off: each service is a fresh interpreter",
    )


class LoggingSettings(_Section):
    """Each process's log file, ``log_dir/<name>.log``, rotated by size."""

    max_bytes: int = Field(
        10 << 20, ge=1024, description="Rotate a log file when it reaches this size"
    )
    backup_count: int = Field(
        5, ge=1, le=1000, description="Rotated files kept per log (<name>.log.1 is the newest)"
    )


class Settings(BaseSettings):
    """The fleet-wide sections; ``load_settings()`` returns it with every service's section."""

    model_config = SettingsConfigDict(
        env_prefix="REFACTORBOT_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    data_dir: Path = Field(Path("data"), description="SQLite files and generated secrets")
    log_dir: Path = Field(Path("logs"), description="One log file per service")
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    internal_token: SecretStr | None = Field(None, description="Shared token of internal calls")
    openrouter: OpenRouterSettings = Field(default_factory=OpenRouterSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    client: ClientSettings = Field(default_factory=ClientSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    replicas: ReplicaSettings = Field(default_factory=ReplicaSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    if TYPE_CHECKING:  # each service's section, added by settings_model() at run time

        def __getattr__(self, name: str) -> Any: ...

    @model_validator(mode="after")
    def _fill_service_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.log_dir = self.log_dir.expanduser().resolve()
        for name, entry in discover().items():
            svc = self.service(name)
            manifest = entry.manifest
            if svc.port is None:
                svc.port = manifest.port
            if svc.database_url is None:
                svc.database_url = f"sqlite:///{self.data_dir / manifest.database}"
        return self

    def service(self, name: str) -> ServiceSettings:
        """Settings of the named service."""
        if name not in discover():
            raise KeyError(f"unknown service {name!r}")
        svc = getattr(self, name)
        if not isinstance(svc, ServiceSettings):  # a plain Settings(): no service sections
            raise KeyError(f"no settings for service {name!r}; use load_settings()")
        return svc

    @property
    def llm_base_url(self) -> str:
        """Where providers sends completions: OpenRouter with a key, else the simulator."""
        return self.openrouter.base_url if self.openrouter.api_key else self.simulator.base_url

    @property
    def llm_mode(self) -> str:
        if self.openrouter.api_key:
            return "OpenRouter"
        return "OpenRouter simulator: set OPENROUTER_API_KEY for real models"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _PlainEnvAliases(settings_cls),
            _YamlFileSource(settings_cls),
        )


class _YamlFileSource(PydanticBaseSettingsSource):
    """The YAML config file, loaded safely; missing is fine only for the default path."""

    def __call__(self) -> dict[str, Any]:
        explicit = os.environ.get(CONFIG_ENV)
        path = Path(explicit) if explicit else DEFAULT_CONFIG_PATH
        if not path.exists():
            if explicit:
                raise ConfigError(f"{CONFIG_ENV}={explicit}: file not found")
            return {}
        try:
            data = load_yaml_file(path)
        except UnsafeYamlError as exc:
            raise ConfigError(str(exc)) from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of settings")
        return data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ does all the work


class _PlainEnvAliases(PydanticBaseSettingsSource):
    """Well-known variables without our prefix (OPENROUTER_API_KEY)."""

    def __call__(self) -> dict[str, Any]:
        key = os.environ.get("OPENROUTER_API_KEY")
        return {"openrouter": {"api_key": key}} if key else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError


def format_validation_error(exc: ValidationError) -> str:
    """One line per failing field: ``dotted.field: problem``."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def _section_model(entry: ServiceEntry) -> type[ServiceSettings]:
    """``SETTINGS_MODEL`` of the service's config.py, else plain ServiceSettings."""
    if not (entry.path / "config.py").is_file():
        return ServiceSettings
    module = importlib.import_module(f"{entry.package}.config")
    model = getattr(module, "SETTINGS_MODEL", None)
    if not (isinstance(model, type) and issubclass(model, ServiceSettings)):
        raise ConfigError(
            f"{entry.path / 'config.py'}: SETTINGS_MODEL must be a ServiceSettings subclass"
        )
    return model


@cache
def settings_model() -> type[Settings]:
    """Settings with a section per discovered service (built once per process)."""
    sections: dict[str, Any] = {
        name: (model, Field(default_factory=model))
        for name, model in ((n, _section_model(e)) for n, e in discover().items())
    }
    clash = sorted(set(sections) & set(Settings.model_fields))
    if clash:
        raise ConfigError(f"services named like a fleet-wide setting: {', '.join(clash)}")
    model = create_model("Settings", __base__=Settings, __module__=__name__, **sections)
    return cast(type[Settings], model)


def load_settings(**overrides: Any) -> Settings:
    """Load and validate the configuration, raising ConfigError with a readable message."""
    try:
        return settings_model()(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc
