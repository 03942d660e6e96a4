"""Reading config.toml (config.py): the pipeline's helper processes can be turned off."""

from __future__ import annotations

import tomllib

import pytest

from watchfloor.config import DEFAULT_CONFIG, ConfigError, load_settings


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WATCHFLOOR_HOME", "WATCHFLOOR_DB", "WATCHFLOOR_WEB_HOST", "WATCHFLOOR_WEB_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_the_written_default_configuration_runs_both_helpers(tmp_path) -> None:
    (tmp_path / "config.toml").write_text(DEFAULT_CONFIG, encoding="utf-8")
    pipeline = tomllib.loads(DEFAULT_CONFIG)["pipeline"]
    assert pipeline["match_process"] is True and pipeline["signal_process"] is True  # written out, not commented
    settings = load_settings(tmp_path)
    assert settings.match_process and settings.signal_process


def test_without_a_configuration_both_helpers_run(tmp_path) -> None:
    settings = load_settings(tmp_path)
    assert settings.match_process and settings.signal_process


@pytest.mark.parametrize("value", ["false", '"false"', '"no"', "0"])
def test_the_match_helper_can_be_turned_off(tmp_path, value: str) -> None:
    (tmp_path / "config.toml").write_text(f"[pipeline]\nmatch_process = {value}\n", encoding="utf-8")
    settings = load_settings(tmp_path)
    assert not settings.match_process
    assert settings.signal_process  # the other helper is its own setting


def test_a_pipeline_setting_outside_its_table_is_refused(tmp_path) -> None:
    (tmp_path / "config.toml").write_text('pipeline = "fast"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[pipeline\] must be tables"):
        load_settings(tmp_path)
