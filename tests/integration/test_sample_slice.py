"""Adding a slice needs no edit in services/kit, dashboard/ or master_core: a small slice
package, installed from a temporary folder (its files plus a dist-info with the entry point,
as ``pip install --target`` leaves them), is served, listed in the fleet status and shown on
the dashboard."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from services.kit.config import settings_model
from services.kit.manifest import discover
from services.kit.plugins import dashboard_pages, plugin_manager
from services.kit.testing import TEST_TOKEN, free_port

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "rb_sample-slice-admin-key-for-tests"

FILES = {
    "sample_slice/__init__.py": "",
    "sample_slice/__main__.py": 'from services.kit.serve import serve\n\nserve("sample")\n',
    "sample_slice/slice.yaml": (
        "name: sample\nversion: 0.3.0\ndescription: A sample slice from outside the repo\n"
        "port: 8190\ndatabase: slice_sample.db\ncapabilities: [greeting.read]\ncalls: []\n"
    ),
    "sample_slice/config.py": (
        "from pydantic import Field\n\nfrom services.kit.config import ServiceSettings\n\n\n"
        "class SampleSettings(ServiceSettings):\n"
        '    greeting: str = Field("hello", description="What the slice says")\n\n\n'
        "SETTINGS_MODEL = SampleSettings\n"
    ),
    "sample_slice/schemas.py": (
        "from pydantic import BaseModel\n\n\nclass GreetingPublic(BaseModel):\n    greeting: str\n"
    ),
    "sample_slice/routes.py": (
        "from fastapi import APIRouter\n\nfrom sample_slice.schemas import GreetingPublic\n"
        "from services.kit.app import ContextDep\n\n"
        'router = APIRouter(prefix="/v1")\n\n\n@router.get("/greeting")\n'
        "async def read_greeting(ctx: ContextDep) -> GreetingPublic:\n"
        "    return GreetingPublic(greeting=ctx.settings.sample.greeting)\n"
    ),
    "sample_slice/slice.py": (
        "from fastapi import APIRouter\n\nfrom sample_slice.routes import router\n"
        "from services.kit.slice_base import AtomicSlice\n\n\n"
        "class SampleSlice(AtomicSlice):\n"
        '    name = "sample"\n\n'
        "    def routers(self) -> list[APIRouter]:\n        return [router]\n\n\n"
        "def create_slice() -> SampleSlice:\n    return SampleSlice()\n"
    ),
    "sample_slice/plugin.py": (
        "from pathlib import Path\n\n"
        "from services.kit.hookspecs import DashboardPage, hookimpl\n\n\n"
        "@hookimpl\ndef refactorbot_dashboard_pages() -> list[DashboardPage]:\n"
        '    page = Path(__file__).resolve().parent / "ui" / "greeting.py"\n'
        '    return [DashboardPage("Sample", "Greeting", page)]\n'
    ),
    "sample_slice/ui/greeting.py": (
        "import streamlit as st\n\nfrom sample_slice.schemas import GreetingPublic\n"
        "from services.kit import ui\n\n"
        'st.title("Greeting")\n'
        'said = ui.read(GreetingPublic, "sample", "greeting")\n'
        'st.metric("The sample slice says", said.greeting)\n'
    ),
    "sample_slice/migrations/versions/.keep": "",
    "sample_slice-0.3.0.dist-info/METADATA": (
        "Metadata-Version: 2.1\nName: sample-slice\nVersion: 0.3.0\n"
    ),
    "sample_slice-0.3.0.dist-info/entry_points.txt": (
        "[refactorbot.slices]\nsample = sample_slice\n"
    ),
}


def _forget_discovery() -> None:
    for cached in (discover, settings_model, plugin_manager):
        cached.cache_clear()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The sample package 'installed' in a folder on this process's and its children's path."""
    folder = tmp_path / "site"
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    monkeypatch.syspath_prepend(str(folder))
    _forget_discovery()
    yield folder
    for name in [m for m in sys.modules if m == "sample_slice" or m.startswith("sample_slice.")]:
        del sys.modules[name]
    monkeypatch.undo()
    _forget_discovery()


def _start(args: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"not up: {log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_a_slice_from_outside_is_served_listed_and_on_the_dashboard(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample_port, master_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("REFACTORBOT_") and k != "OPENROUTER_API_KEY"
    }
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
            "REFACTORBOT_CONFIG": str(tmp_path / "none.yaml"),
            "REFACTORBOT_DATA_DIR": str(tmp_path / "data"),
            "REFACTORBOT_LOG_DIR": str(tmp_path / "logs"),
            "REFACTORBOT_SAMPLE__PORT": str(sample_port),
            "REFACTORBOT_SAMPLE__GREETING": "hello from outside",
            "REFACTORBOT_MASTER_CORE__PORT": str(master_port),
            "REFACTORBOT_MASTER_CORE__ADMIN_API_KEY": ADMIN_KEY,
        }
    )
    (tmp_path / "none.yaml").write_text("log_level: INFO\n")
    sample_url = f"http://127.0.0.1:{sample_port}"

    # by hand, without a token: it starts, and says what that means
    by_hand = _start(
        [sys.executable, "-m", "refactorbot", "serve", "sample"],
        env,
        sample_url,
        tmp_path / "by_hand.log",
    )
    _stop(by_hand)
    said = (tmp_path / "by_hand.log").read_text()
    assert "internal_token is not set" in said and "REFACTORBOT_INTERNAL_TOKEN" in said

    env["REFACTORBOT_INTERNAL_TOKEN"] = TEST_TOKEN
    sample = _start(
        [sys.executable, "-m", "sample_slice"], env, sample_url, tmp_path / "sample.log"
    )
    master_url = f"http://127.0.0.1:{master_port}"
    master = _start(
        [sys.executable, "-m", "refactorbot", "serve", "master_core"],
        env,
        master_url,
        tmp_path / "master.log",
    )
    try:
        status = httpx.get(f"{sample_url}/status", timeout=5).json()
        assert status["name"] == "sample" and status["version"] == "0.3.0"
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        fleet = httpx.get(f"{master_url}/v1/fleet/status", headers=admin, timeout=30).json()
        assert fleet["services"]["sample"]["ok"] is True
        assert fleet["services"]["sample"]["status"]["version"] == "0.3.0"
        through = httpx.get(f"{master_url}/v1/admin/sample/greeting", headers=admin, timeout=10)
        assert through.json() == {"greeting": "hello from outside"}

        # the dashboard: the hook lists the page, the navigation shows it, and it reads
        pages = {(p.section, p.title): p for p in dashboard_pages()}
        page = pages[("Sample", "Greeting")]
        monkeypatch.setenv("REFACTORBOT_API_KEY", ADMIN_KEY)
        for key in ("REFACTORBOT_CONFIG", "REFACTORBOT_MASTER_CORE__PORT"):
            monkeypatch.setenv(key, env[key])
        app = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=30)
        app.run()
        assert not app.exception, app.exception
        app.switch_page(str(page.path))
        app.run()
        assert not app.exception, app.exception
        assert app.title[0].value == "Greeting"
        assert app.metric[0].value == "hello from outside"
    finally:
        _stop(master)
        _stop(sample)
