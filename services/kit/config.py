"""One typed configuration for the whole fleet.

Sources, strongest first: environment variables (``REFACTORBOT_`` prefix, ``__`` between
nested fields, e.g. ``REFACTORBOT_SESSION__DATABASE_URL``), then the YAML file
(``config/refactorbot.yaml`` or the path in ``REFACTORBOT_CONFIG``), then the defaults,
where each service's port comes from its ``slice.yaml``. ``OPENROUTER_API_KEY`` is also
read as ``openrouter.api_key``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from services.kit.manifest import SERVICE_NAMES, load_manifest
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


class AgentCoreSettings(ServiceSettings):
    model: str = Field("openai/gpt-4o-mini", description="Model asked for each turn")
    system_prompt: str = Field(
        "You are RefactorBot, a helpful assistant. Answer clearly and briefly.",
        description="System prompt placed before the history",
    )
    max_history_messages: int = Field(50, ge=0, le=10_000, description="History sent per turn")
    max_message_chars: int = Field(32_000, gt=0, description="Largest user message accepted")
    history_token_budget: int = Field(
        8_000, gt=0, description="History kept per turn, in estimated tokens (oldest dropped)"
    )
    tools_enabled: bool = Field(True, description="Offer the tools slice's tools to the model")
    workspace: str = Field("default", max_length=64, description="Workspace tool calls use")
    max_iterations: int = Field(8, ge=1, le=100, description="LLM calls per turn at most")
    max_turn_tokens: int = Field(200_000, gt=0, description="Tokens one turn may use")
    max_turn_cost_usd: float = Field(1.0, gt=0, description="Money one turn may spend")
    turn_deadline_s: float = Field(150.0, gt=0, le=3600, description="Wall-clock limit of a turn")
    max_parallel_tools: int = Field(4, ge=1, le=64, description="Tool calls run at once")
    tool_result_max_chars: int = Field(
        16_000, gt=0, description="A tool result fed back to the model is cut to this"
    )
    meta_reasoning: bool = Field(
        False, description="Plan multi-step requests and review each draft answer once"
    )
    memory_enabled: bool = Field(
        True, description="Recall relevant memories each turn and offer remember/recall"
    )
    memory_token_budget: int = Field(
        800, ge=0, description="Memories placed in a turn's context, in estimated tokens"
    )
    skills_enabled: bool = Field(True, description="Add the skills relevant to each request")
    max_reflections: int = Field(1, ge=0, le=5, description="Extra rounds a review may ask for")


class ToolsSettings(ServiceSettings):
    workspaces: dict[str, Path] = Field(
        default_factory=dict,
        description="Named workspace folders tools work in; default: {default: data_dir/workspace}",
    )
    max_read_bytes: int = Field(1 << 20, gt=0, description="Most bytes read_file/search read")
    max_write_bytes: int = Field(1 << 20, gt=0, description="Largest file write_file writes")
    output_cap_bytes: int = Field(
        64 * 1024, gt=0, description="Default cap of a tool's output (marked when cut)"
    )
    max_list_entries: int = Field(1_000, gt=0, description="Most entries list_dir returns")
    max_search_results: int = Field(200, gt=0, description="Most matches search_files returns")
    max_search_files: int = Field(5_000, gt=0, description="Most files one search looks at")
    default_timeout_s: float = Field(10.0, gt=0, le=600, description="Default tool time limit")
    exec_allow: list[str] = Field(
        default_factory=lambda: ["echo", "ls", "cat", "wc", "grep", "head", "tail", "sort"],
        description="Programs exec may run (names found on exec_path)",
    )
    exec_path: str = Field(
        "/usr/local/bin:/usr/bin:/bin", description="Where programs are looked up"
    )
    sandbox: Literal["auto", "bubblewrap", "none"] = Field(
        "auto", description="auto: bubblewrap when it works here, else none"
    )
    exec_unsandboxed: bool = Field(
        False,
        description="Let exec run without a sandbox (argument policies, unprivileged user and "
        "resource limits only); off: exec is unavailable when bubblewrap is not usable",
    )
    exec_user: str = Field(
        "nobody", min_length=1, description="Whom exec runs programs as when the service is root"
    )
    exec_cpu_s: int = Field(30, gt=0, le=3_600, description="CPU seconds one exec'd program gets")
    exec_memory_mb: int = Field(
        1_024, gt=0, description="Address space of one exec'd program, in MiB"
    )
    exec_file_mb: int = Field(16, gt=0, description="Largest file an exec'd program may write")
    exec_processes: int = Field(
        64, gt=0, description="Processes an exec'd program's user may have (unsandboxed)"
    )
    exec_open_files: int = Field(256, gt=0, description="Open files of an exec'd program")
    exec_max_argv_bytes: int = Field(
        65_536, gt=0, le=1 << 20, description="Total size of exec's argv"
    )
    web_fetch_allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts or IPs web_fetch may reach even when private or loopback",
    )
    web_fetch_max_bytes: int = Field(1 << 20, gt=0, description="Most bytes web_fetch reads")
    web_fetch_max_redirects: int = Field(5, ge=0, le=20)
    max_log_argument_bytes: int = Field(
        2_048, gt=0, description="Arguments kept in the execution log, per call"
    )


class ProvidersSettings(ServiceSettings):
    upstream_timeout_s: float = Field(120.0, gt=0, description="Timeout of one upstream call")
    max_tokens_cap: int = Field(16_384, gt=0, description="Largest max_tokens a caller may ask")
    retry_max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per upstream call (retryable errors only)"
    )
    retry_max_total_s: float = Field(
        20.0, ge=0, description="Longest time spent retrying one call, Retry-After included"
    )
    retry_backoff_s: float = Field(
        0.5, ge=0, description="First backoff when no Retry-After is given (doubles, jittered)"
    )
    ledger_mode: Literal["durable", "write_behind"] = Field(
        "durable",
        description="durable: answer after the usage row is committed; "
        "write_behind: answer first (a hard kill may lose the last moments of rows)",
    )
    ledger_max_queue: int = Field(10_000, gt=0, description="Usage rows waiting at most")
    ledger_max_batch: int = Field(256, gt=0, description="Usage rows per transaction at most")
    budget_cache_ttl_s: float = Field(
        2.0, ge=0, description="How long budget definitions are cached (other replicas' edits)"
    )
    catalog_refresh_s: float = Field(
        21_600, ge=0, description="Refresh the model catalog from upstream this often; 0 never"
    )
    budget_default_max_tokens: int = Field(
        4_096,
        gt=0,
        description="max_tokens reserved and sent when a budget applies and the caller set none",
    )


class SessionSettings(ServiceSettings):
    max_message_chars: int = Field(200_000, gt=0, description="Largest message stored")
    max_page_size: int = Field(1_000, gt=0, description="Most messages returned per page")
    retain_max_messages: int = Field(
        0, ge=0, description="Live messages kept per session; older ones archived (0: all)"
    )
    retain_max_age_days: float = Field(
        0, ge=0, description="Messages older than this are archived (0: never)"
    )
    retain_max_tokens: int = Field(
        0, ge=0, description="Live history kept within this many estimated tokens (0: all)"
    )
    retention_every_s: float = Field(
        3_600, ge=0, description="How often retention runs over every session (0: never)"
    )
    max_search_results: int = Field(50, gt=0, description="Most hits a search returns")


class MemorySettings(ServiceSettings):
    max_text_chars: int = Field(4_000, gt=0, description="Longest memory text")
    max_tags: int = Field(20, gt=0, description="Most tags on one memory")
    max_search_results: int = Field(50, gt=0, description="Most hits one search returns")
    consolidate_every_s: float = Field(
        3_600, ge=0, description="Consolidate every session's new history this often (0: never)"
    )
    consolidate_min_age_s: float = Field(
        300, ge=0, description="Only messages at least this old are consolidated"
    )
    consolidate_max_messages: int = Field(
        200, gt=0, description="Messages one consolidation run reads at most"
    )
    consolidation_model: str | None = Field(
        None, max_length=200, description="Model that extracts memories (default: the agent's)"
    )
    duplicate_similarity: float = Field(
        0.8, gt=0, le=1, description="Word overlap (Jaccard) above which memories merge"
    )


class SkillsSettings(ServiceSettings):
    folders: list[Path] = Field(
        default_factory=list,
        description="Skill folders to load; default: the shipped skills/ and data_dir/skills",
    )
    max_skill_md_bytes: int = Field(256 * 1024, gt=0, description="Largest SKILL.md")
    max_front_matter_bytes: int = Field(16 * 1024, gt=0, description="Largest front matter")
    max_yaml_depth: int = Field(10, gt=0, description="Deepest nesting in front matter")
    max_yaml_nodes: int = Field(1_000, gt=0, description="Most YAML nodes in front matter")
    max_files_per_skill: int = Field(100, gt=0, description="Most files in one skill")
    max_skill_bytes: int = Field(5 << 20, gt=0, description="Most bytes in one skill")
    max_archive_bytes: int = Field(5 << 20, gt=0, description="Largest upload")
    max_archive_members: int = Field(200, gt=0, description="Most entries in an upload")
    max_unpacked_bytes: int = Field(20 << 20, gt=0, description="Most bytes an upload unpacks")
    watch_every_s: float = Field(
        2.0, ge=0, description="Look for changed skill files this often (0: only on reload)"
    )
    select_token_budget: int = Field(
        1_500, ge=0, description="Skill instructions added to a turn, in estimated tokens"
    )
    max_selected: int = Field(3, ge=0, description="Most skills offered to one turn")


class EventBusSettings(ServiceSettings):
    publish_domain_events: bool = Field(
        True, description="Slices relay their domain events (outbox) to the bus"
    )
    default_max_messages: int = Field(100_000, gt=0, description="A new topic's capacity")
    default_max_bytes: int = Field(256 << 20, gt=0, description="A new topic's byte capacity")
    default_visibility_timeout_s: float = Field(
        30.0, gt=0, le=43_200, description="Unacknowledged events are redelivered after this"
    )
    default_max_deliveries: int = Field(
        5, ge=1, le=1_000, description="Deliveries before an event goes to the dead letters"
    )
    max_event_bytes: int = Field(256 * 1024, gt=0, description="Largest event payload")
    max_batch: int = Field(500, gt=0, description="Most events per publish or pull")
    max_topics: int = Field(1_000, gt=0, description="Most topics")
    max_waiters: int = Field(1_000, gt=0, description="Long polls waiting at once")
    max_wait_s: float = Field(30.0, gt=0, description="Longest long poll")
    producer_rate: float = Field(
        0, ge=0, description="Events per second one producer may publish (0: unlimited)"
    )
    retry_after_s: float = Field(1.0, gt=0, description="Retry-After sent with 503/429")
    sweep_every_s: float = Field(
        1.0, gt=0, description="How often expired leases, retention and purges are handled"
    )
    push_enabled: bool = Field(True, description="Deliver to groups' webhooks")
    backend: Literal["sqlite", "nats"] = Field(
        "sqlite", description="sqlite (embedded) or nats (JetStream, for several replicas)"
    )
    nats_url: str = Field("nats://127.0.0.1:4222", description="With backend nats")
    nats_duplicate_window_s: float = Field(
        120.0, gt=0, description="NATS: how long a repeated event id is recognised"
    )


class MasterCoreSettings(ServiceSettings):
    admin_api_key: SecretStr | None = Field(
        None, description="First admin API key; stored hashed at start-up"
    )


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

    master_core: MasterCoreSettings = Field(default_factory=MasterCoreSettings)
    agent_core: AgentCoreSettings = Field(default_factory=AgentCoreSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    communication: ServiceSettings = Field(default_factory=ServiceSettings)
    session: SessionSettings = Field(default_factory=SessionSettings)
    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    skills: SkillsSettings = Field(default_factory=SkillsSettings)
    event_bus: EventBusSettings = Field(default_factory=EventBusSettings)

    @model_validator(mode="after")
    def _fill_service_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.log_dir = self.log_dir.expanduser().resolve()
        for name in SERVICE_NAMES:
            svc = self.service(name)
            manifest = load_manifest(name)
            if svc.port is None:
                svc.port = manifest.port
            if svc.database_url is None:
                svc.database_url = f"sqlite:///{self.data_dir / manifest.database}"
        return self

    def service(self, name: str) -> ServiceSettings:
        """Settings of the named service."""
        if name not in SERVICE_NAMES:
            raise KeyError(f"unknown service {name!r}")
        svc: ServiceSettings = getattr(self, name)
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


def load_settings(**overrides: Any) -> Settings:
    """Load and validate the configuration, raising ConfigError with a readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc
