"""The tools slice's settings: ``tools:`` in the config, ``REFACTORBOT_TOOLS__*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from services.kit.config import ServiceSettings


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


#: The section this service adds to the fleet's Settings (found by the kit).
SETTINGS_MODEL = ToolsSettings
