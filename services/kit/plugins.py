"""The plugin manager: every service's ``plugin.py``, then installed plugins.

Built-in services' plugins are registered by the same call as a third party's: each
discovered service's ``<package>.plugin`` module under the service's name, then every module
of the entry-point group ``refactorbot`` (``[project.entry-points.refactorbot]`` in a
plugin's pyproject.toml), skipped when a plugin of that name is already registered.
"""

from __future__ import annotations

import importlib
from functools import cache

import pluggy

from services.kit import hookspecs
from services.kit.manifest import discover

PLUGINS_GROUP = "refactorbot"


@cache
def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, built on first use (imports only plugin modules)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, entry in discover().items():
        if (entry.path / "plugin.py").is_file():
            pm.register(importlib.import_module(f"{entry.package}.plugin"), name=name)
    pm.load_setuptools_entrypoints(PLUGINS_GROUP)
    pm.check_pending()
    return pm


def dashboard_pages() -> list[hookspecs.DashboardPage]:
    """Every plugin's dashboard pages, services in start-up order, then other plugins."""
    pm = plugin_manager()
    # pluggy calls the newest registration first; reversed, the gateway's pages come last
    results = pm.hook.refactorbot_dashboard_pages()
    return [page for pages in reversed(results) for page in pages]
