"""The one typed configuration: YAML, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.kit.config import ConfigError, load_settings


def test_defaults_come_from_slice_manifests(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.session.port == 8105 and s.master_core.port == 8000
    assert s.session.database_url == f"sqlite:///{tmp_path / 'data' / 'slice_session.db'}"
    assert s.master_core.database_url.endswith("/data/master.db")
    assert s.llm_mode.startswith("OpenRouter simulator")


def test_env_overrides_yaml(tmp_path: Path, monkeypatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("session:\n  port: 9105\nagent_core:\n  model: x/y\n")
    monkeypatch.setenv("REFACTORBOT_CONFIG", str(cfg))
    monkeypatch.setenv("REFACTORBOT_SESSION__DATABASE_URL", "sqlite:////tmp/other.db")
    monkeypatch.setenv("REFACTORBOT_AGENT_CORE__MODEL", "a/b")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    s = load_settings()
    assert s.session.port == 9105
    assert s.session.database_url == "sqlite:////tmp/other.db"
    assert s.agent_core.model == "a/b"
    assert s.llm_mode == "OpenRouter" and s.llm_base_url == "https://openrouter.ai/api/v1"


@pytest.mark.parametrize(
    ("yaml_text", "env", "expected"),
    [
        ("session:\n  port: 70000\n", {}, "session.port: Input should be less than or equal"),
        ("sesion:\n  port: 1\n", {}, "sesion: Extra inputs are not permitted"),
        ("", {"REFACTORBOT_CLIENT__TIMEOUT_S": "-1"}, "client.timeout_s"),
        ("", {"REFACTORBOT_LOGGING__MAX_BYTES": "10"}, "logging.max_bytes: Input should be"),
        ("logging:\n  backup_count: 0\n", {}, "logging.backup_count: Input should be"),
        ("log_level: LOUD\n", {}, "log_level"),
        ("- a\n- b\n", {}, "top level must be a mapping"),
        ("a: &x 1\nb: *x\n", {}, "anchors and aliases are not allowed"),
        ("a: [\n", {}, "not valid YAML"),
    ],
)
def test_wrong_config_names_the_field(tmp_path, monkeypatch, yaml_text, env, expected) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    monkeypatch.setenv("REFACTORBOT_CONFIG", str(cfg))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in str(info.value)


def test_missing_explicit_config_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("REFACTORBOT_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="file not found"):
        load_settings()


def test_serve_exits_2_with_the_message(tmp_path, monkeypatch, capsys) -> None:
    from services.kit.serve import serve

    monkeypatch.setenv("REFACTORBOT_SESSION__PORT", "not-a-port")
    with pytest.raises(SystemExit) as info:
        serve("session")
    assert info.value.code == 2
    assert "session.port" in capsys.readouterr().err
