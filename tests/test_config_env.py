"""Environment variables and impossible values: a mistyped MAILDESK_*
variable or a port 0 stops the start with the name to fix, instead of
being ignored or failing later."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from maildesk.config import (
    ConfigError,
    _env_key,
    is_setting_variable,
    load_settings,
    setting_variables,
)
from tests.conftest import REPO

DEFAULT = REPO / "maildesk.toml"


def error(environ: dict[str, str], path: Path | None = DEFAULT) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ)
    return str(err.value)


@pytest.mark.parametrize(("typo", "meant"), [
    ("MAILDESK_SMTP_PORT", "MAILDESK_SMTP__PORT"),  # one underscore
    ("MAILDESK_SMTP__PROT", "MAILDESK_SMTP__PORT"),
    ("MAILDESK_SMPT__PORT", "MAILDESK_SMTP__PORT"),
    ("MAILDESK_RELAY_HOST", "MAILDESK_RELAY__HOST"),
    ("MAILDESK_DATA__DIR", "MAILDESK_DATA_DIR"),
    ("MAILDESK_SECURITY__SECRETS", "MAILDESK_SECURITY__SECRET"),
])
def test_a_mistyped_variable_is_an_error_with_the_name_meant(typo: str, meant: str) -> None:
    message = error({typo: "2626"})
    assert f"environment variable {typo}: names no setting; did you mean {meant}?" in message


def test_a_variable_like_nothing_known_says_where_the_keys_are() -> None:
    assert "MAILDESK_XYZZY: names no setting; see maildesk.toml" in error({"MAILDESK_XYZZY": "1"})


def test_a_whole_section_from_one_variable_is_refused_with_an_example() -> None:
    message = error({"MAILDESK_RELAY": "smtp.example.com"})
    assert "[relay] is a section: set its keys one by one, e.g. MAILDESK_RELAY__" in message


def test_unknown_variables_and_bad_values_are_reported_together() -> None:
    message = error({"MAILDESK_SMTP_PORT": "1", "MAILDESK_LIMITS__MAX_MESSAGE_BYTES": "viel"})
    assert "MAILDESK_SMTP_PORT" in message and "limits.max_message_bytes" in message


def test_variables_that_are_not_settings_stay_allowed(tmp_path: Path) -> None:
    settings = load_settings(DEFAULT, {
        "MAILDESK_CONFIG": str(DEFAULT), "MAILDESK_TEST_DATABASE_URL": "postgresql://x/y",
        "MAILDESK_TEST_WHATEVER_NEXT": "1", "MAILDESK_BENCH_REDIS_URL": "redis://x",
        "MAILDESK_FUZZ_EXAMPLES": "20000", "MAILDESKTOP": "not our prefix",
        "MAILDESK_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path


def test_nested_tables_inside_a_section_are_keys() -> None:
    settings = load_settings(DEFAULT, {"MAILDESK_NOTIFY__SIGNATURE_NAME": "Team Nord",
                                       "MAILDESK_SLA__INCIDENT__RESOLUTION_HOURS": "30"})
    assert settings.notify.signature("en") == "Team Nord"
    assert settings.sla.incident.resolution_hours == 30


def test_every_suggested_name_is_a_setting() -> None:
    names = setting_variables()
    assert "MAILDESK_SMTP__PORT" in names and "MAILDESK_DATA_DIR" in names
    assert all(_env_key(name) is not None for name in names)


def test_every_maildesk_variable_the_repository_mentions_is_valid() -> None:
    """Docs, units, CI and tests name only real settings (or the few that
    are not settings): a typo there would now stop the start."""
    mine = {Path(__file__).resolve(), (REPO / "tests/cli/test_check_ops.py").resolve()}
    seen: dict[str, str] = {}
    roots = [REPO / "README.md", REPO / "maildesk.toml", REPO / "config", REPO / ".ci",
             REPO / "maildesk", REPO / "tests", REPO / "bench"]
    for root in roots:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            if path.resolve() in mine or path.suffix in (".pyc", ".eml", ".sqlite3"):
                continue
            text = path.read_text(errors="ignore")
            for name in re.findall(r"\bMAILDESK_[A-Z0-9_]*[A-Z0-9]\b", text):
                if f"{name}: names no setting" not in text:  # the README's example typo
                    seen.setdefault(name, str(path.relative_to(REPO)))
    wrong = {name: where for name, where in seen.items()
             if is_setting_variable(name) and _env_key(name) is None}
    assert not wrong
    assert len(seen) > 20  # the scan found the documented ones


@pytest.mark.parametrize("key", ["smtp.port", "lmtp.port", "web.port"])
def test_port_0_is_refused_with_key_and_file(tmp_path: Path, key: str) -> None:
    section, name = key.split(".")
    path = tmp_path / "maildesk.toml"
    path.write_text(f"[{section}]\n{name} = 0\n")
    message = error({}, path)
    assert f"{path}: key '{key}'" in message and "greater than or equal to 1" in message
    message = error({f"MAILDESK_{section.upper()}__PORT": "0"})
    assert f"MAILDESK_{section.upper()}__PORT: key '{key}'" in message


@pytest.mark.parametrize(("environ", "key", "text"), [
    ({"MAILDESK_WEB__BASE_URL": "ftp://support.example.com"}, "web.base_url", "http://"),
    ({"MAILDESK_WEB__BASE_URL": "support.example.com"}, "web.base_url", "absolute"),
    ({"MAILDESK_SMTP__TLS_CERT": "/etc/ssl/x.pem"}, "smtp.tls_key", "go together"),
    ({"MAILDESK_SMTP__TLS_KEY": "/etc/ssl/x.key"}, "smtp.tls_key", "tls_cert is not"),
    ({"MAILDESK_SERVE__RETRY_MAX_SECONDS": "1"}, "serve.retry_max_seconds", "below"),
    ({"MAILDESK_WORKER__SWEEP_SECONDS": "0"}, "worker.sweep_seconds", "greater than 0"),
    ({"MAILDESK_RULES__SWEEP_SECONDS": "-5"}, "rules.sweep_seconds", "greater than 0"),
    ({"MAILDESK_LIMITS__MAX_MESSAGE_BYTES": "10"}, "limits.max_message_bytes", "1024"),
    ({"MAILDESK_RELAY__PORT": "70000"}, "relay.port", "less than or equal to 65535"),
])
def test_impossible_values_are_refused_with_the_key(environ: dict[str, str], key: str,
                                                     text: str) -> None:
    message = error(environ)
    assert f"key '{key}'" in message and text in message


def test_base_url_follows_the_web_listener_unless_set() -> None:
    assert load_settings(DEFAULT, {}).web.base_url == "http://127.0.0.1:8025"
    moved = load_settings(DEFAULT, {"MAILDESK_WEB__PORT": "8111"})
    assert moved.web.base_url == "http://127.0.0.1:8111"
    v6 = load_settings(DEFAULT, {"MAILDESK_WEB__HOST": "::1", "MAILDESK_WEB__PORT": "8111"})
    assert v6.web.base_url == "http://[::1]:8111"
    wildcard = load_settings(DEFAULT, {"MAILDESK_WEB__HOST": "0.0.0.0"})
    assert wildcard.web.base_url == f"http://{os.uname().nodename}:8025"
    given = load_settings(DEFAULT, {"MAILDESK_WEB__PORT": "8111",
                                    "MAILDESK_WEB__BASE_URL": "https://help.example.com/"})
    assert given.web.base_url == "https://help.example.com"
    assert load_settings(None, {"MAILDESK_WEB__PORT": "9"}).web.base_url == "http://127.0.0.1:9"
