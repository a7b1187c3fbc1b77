"""Settings: file + environment, validation errors as one sentence, atomic saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from aria.config import AriaPaths, AriaSettings, load_settings, save_settings
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


def test_round_trip(aria_paths: AriaPaths) -> None:
    settings = AriaSettings()
    settings.node.profile = "balanced"
    settings.inference.threads = 3
    save_settings(aria_paths, settings)
    again = load_settings(aria_paths)
    assert again.node.profile == "balanced"
    assert again.inference.threads == 3


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
