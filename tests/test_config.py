"""Settings: file + environment, validation errors as one sentence, atomic saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from aria.config import AriaPaths, load_settings, update_settings
from aria.errors import ConfigError


def test_paths_follow_aria_home(aria_home: Path) -> None:
    paths = AriaPaths.from_env()
    assert paths.home == aria_home.resolve()
    assert paths.models == paths.home / "models"


def test_defaults_when_no_file(aria_paths: AriaPaths) -> None:
    settings = load_settings(aria_paths)
    assert settings.node.profile == "efficient"
    assert settings.api.host == "127.0.0.1"
    assert settings.consent.share_inference is False
    assert settings.consent.use_peers is False


def test_update_changes_only_the_named_keys(aria_paths: AriaPaths) -> None:
    aria_paths.config_file.write_text("[api]\nport = 3100\n", encoding="utf-8")
    updated = update_settings(aria_paths, {"node": {"profile": "balanced"}})
    update_settings(aria_paths, {"inference": {"threads": 3}})
    again = load_settings(aria_paths)
    assert updated.node.profile == again.node.profile == "balanced"
    assert (again.inference.threads, again.api.port) == (3, 3100)
    text = aria_paths.config_file.read_text(encoding="utf-8")
    assert "host" not in text  # defaults are not frozen into the file


def test_update_never_writes_environment_overrides(
    aria_paths: AriaPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARIA_INFERENCE__THREADS", "7")
    update_settings(aria_paths, {"node": {"profile": "full"}})
    assert "threads" not in aria_paths.config_file.read_text(encoding="utf-8")


def test_invalid_update_leaves_the_file_alone(aria_paths: AriaPaths) -> None:
    update_settings(aria_paths, {"node": {"profile": "full"}})
    before = aria_paths.config_file.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api\.port"):
        update_settings(aria_paths, {"api": {"port": -1}})
    assert aria_paths.config_file.read_text(encoding="utf-8") == before


def test_unparsable_environment_variable_is_a_config_error(
    aria_paths: AriaPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARIA_P2P__BOOTSTRAP", "not-json")
    with pytest.raises(ConfigError, match="ARIA_"):
        load_settings(aria_paths)


def test_environment_beats_the_file(aria_paths: AriaPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    aria_paths.config_file.write_text("[inference]\nthreads = 2\n", encoding="utf-8")
    monkeypatch.setenv("ARIA_INFERENCE__THREADS", "5")
    assert load_settings(aria_paths).inference.threads == 5


def test_invalid_toml_is_one_clear_error(aria_paths: AriaPaths) -> None:
    aria_paths.config_file.write_text("[node\nprofile=", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(aria_paths)


def test_out_of_range_value_names_the_field(aria_paths: AriaPaths) -> None:
    aria_paths.config_file.write_text("[api]\nport = 70000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api\.port"):
        load_settings(aria_paths)


def test_unknown_key_is_rejected(aria_paths: AriaPaths) -> None:
    aria_paths.config_file.write_text("[node]\nprofil = 'full'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="profil"):
        load_settings(aria_paths)


def test_ensure_makes_a_loosened_home_private_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "node").mkdir(mode=0o777)
    paths = AriaPaths(home)
    paths.ensure()
    assert home.stat().st_mode & 0o777 == 0o700
    assert paths.node.stat().st_mode & 0o777 == 0o700
