"""Issue 12, item 7: every setting is validated when settings load.

A value that is not finite, out of range, of the wrong TOML type, an unknown summarizer,
time zone or device is refused before anything runs: exit 2 and one line naming the
setting and where it came from (the environment variable, the config.toml path or the
flag). The hostile values are in ``tests/fixtures/hostile/input/bad_settings.json``.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.errors import ConfigError
from pipeline.core.settings import load_settings
from tests.helpers import REPO

CASES = json.loads((REPO / "tests" / "fixtures" / "hostile" / "input" / "bad_settings.json")
                   .read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Relative hostile paths land in the test's folder, never in the checkout."""
    monkeypatch.chdir(tmp_path)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("variable, value, setting", CASES["env"],
                         ids=[f"{v}={x!r}" for v, x, _ in CASES["env"]])
def test_bad_environment_value_is_exit_2_naming_setting_and_variable(monkeypatch, capsys, variable,
                                                                     value, setting):
    monkeypatch.setenv(variable, value)
    assert main(["status"]) == 2
    assert variable in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("text, setting", CASES["toml"], ids=[text for text, _ in CASES["toml"]])
def test_bad_config_file_value_is_exit_2_naming_setting_and_file(octet_home, capsys, text, setting):
    octet_home.mkdir(parents=True)
    config = octet_home / "config.toml"
    config.write_text(text + "\n", encoding="utf-8")
    assert main(["status"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(config) in line and setting in line


@pytest.mark.parametrize("flags, flag", CASES["flag"], ids=[repr(f) for f, _ in CASES["flag"]])
def test_bad_flag_value_is_exit_2_naming_the_flag(tmp_path, capsys, flags, flag):
    assert main(["status", *flags]) == 2
    assert flag in _one_line(capsys.readouterr().err)


def test_command_flags_are_validated_too(capsys):
    assert main(["summarize", "--device", "tpu9"]) == 2
    assert "--device" in _one_line(capsys.readouterr().err)
    assert main(["pick", "--timezone", "Mars/Base"]) == 2
    assert "--timezone" in _one_line(capsys.readouterr().err)


def test_infinite_delay_refused_before_anything_is_stored(monkeypatch, settings, capsys):
    """It used to fail with exit 1 after storing the listing."""
    monkeypatch.setenv("OCTET_ARXIV_DELAY", "inf")
    monkeypatch.setenv("OCTET_ARXIV_RSS_URL", "http://127.0.0.1:9/rss/")
    assert main(["run"]) == 2
    assert "OCTET_ARXIV_DELAY" in _one_line(capsys.readouterr().err)
    assert not settings.db_path.exists()


def test_status_subprocess_exit_2_for_a_bad_setting(tmp_path):
    env = {**os.environ, "OCTET_HOME": str(tmp_path / "home"), "OCTET_HTTP_TIMEOUT": "nan"}
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "status"], capture_output=True,
                            text=True, timeout=120, env=env, cwd=REPO)
    assert result.returncode == 2, result.stderr
    assert "OCTET_HTTP_TIMEOUT" in _one_line(result.stderr) and result.stdout == ""


def test_valid_values_still_load(octet_home, monkeypatch):
    octet_home.mkdir(parents=True)
    (octet_home / "config.toml").write_text(
        'arxiv_delay = 0\nhttp_timeout = 2\nhttp_retries = 0\nsummarizer = "OpenAI"\n'
        'device = "cuda:1"\ntimezone = "Asia/Kolkata"\ncategories = ["cs.CL", "hep-th", "astro-ph.CO"]\n',
        encoding="utf-8")
    settings = load_settings()
    assert (settings.arxiv_delay, settings.http_timeout, settings.http_retries) == (0.0, 2.0, 0)
    assert isinstance(settings.arxiv_delay, float) and isinstance(settings.http_retries, int)
    assert settings.summarizer == "openai" and settings.device == "cuda:1"
    assert settings.categories == ("cs.CL", "hep-th", "astro-ph.CO")
    for device in ("auto", "cpu", "cuda", "cuda:0", "mps", "CPU"):
        monkeypatch.setenv("OCTET_DEVICE", device)
        assert load_settings().device == device.lower()
    (octet_home / "config.toml").write_text('timezone = ""\n', encoding="utf-8")
    assert load_settings().timezone == ""
    monkeypatch.setenv("OCTET_HTTP_TIMEOUT", "0.5")
    assert load_settings().http_timeout == 0.5
    assert math.isfinite(load_settings().arxiv_delay)


def test_summarizers_are_defined_in_core_for_the_stages():
    from pipeline.core.settings import SUMMARIZERS
    from pipeline.stages.summaries import BACKENDS
    assert SUMMARIZERS == ("auto", "extractive", "hf", "openai")
    assert set(BACKENDS) == set(SUMMARIZERS)


def test_every_numeric_setting_refuses_nan_and_negatives(tmp_path):
    """New numeric settings (added by other changes) are validated by their type too."""
    from dataclasses import fields

    from pipeline.core.settings import Settings
    numeric = [f.name for f in fields(Settings) if f.type in ("int", "float")]
    assert {"arxiv_delay", "http_timeout", "http_retries"} <= set(numeric)
    for name in numeric:
        for bad in ("nan", "-1", "inf", "many"):
            with pytest.raises(ConfigError) as caught:
                load_settings(environ={"OCTET_HOME": str(tmp_path), f"OCTET_{name.upper()}": bad})
            assert f"OCTET_{name.upper()}" in str(caught.value) and "\n" not in str(caught.value)


def test_home_and_db_paths_with_odd_but_printable_characters_load(tmp_path):
    odd = tmp_path / "my data 'q' \"dq\" 100% $HOME ü"
    settings = load_settings({"home": str(odd), "db": str(odd / "x y.duckdb")}, environ={})
    assert settings.home == odd and settings.db_path == Path(odd / "x y.duckdb")
