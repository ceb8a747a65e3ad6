"""Config: the default file works, env overrides, errors name key and file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from maildesk.config import ConfigError, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "maildesk.toml"


def test_default_file_gives_quick_start_settings() -> None:
    settings = load_settings(DEFAULT, {})
    assert settings.mail.addresses == ("support@example.com",)
    assert [a.email for a in settings.agents] == ["agent@example.com"]
    assert settings.data_dir == Path("./var")
    assert settings.database_url == "sqlite:///var/maildesk.sqlite3"


def test_default_file_equals_built_in_defaults_apart_from_demo_agent() -> None:
    from_file = load_settings(DEFAULT, {}).model_dump()
    built_in = Settings().model_dump()
    from_file.pop("agents")
    built_in.pop("agents")
    assert from_file == built_in


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def _file_keys(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in data.items():
        if isinstance(value, dict):
            keys |= _file_keys(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_every_settings_key_is_documented_in_maildesk_toml() -> None:
    text = DEFAULT.read_text()
    in_file = _file_keys(tomllib.loads(text))
    assert _keys(Settings) == in_file
    # list-of-table keys are documented in comments with their defaults
    for model_key in ("request_type", "subcategory", "members", "language"):
        assert re.search(rf"\b{model_key}\b", text)


def test_environment_overrides_section_and_top_level_keys(tmp_path: Path) -> None:
    env = {
        "MAILDESK_DATA_DIR": str(tmp_path),
        "MAILDESK_DATABASE__URL": "postgresql://u:p@db/maildesk",
        "MAILDESK_LIMITS__MAX_ATTACHMENT_BYTES": "1024",
        "MAILDESK_MAIL__ADDRESSES": '["help@firma.de", "Service@Firma.de"]',
        "MAILDESK_CONFIG": "not a key", "MAILDESK_TEST_ANYTHING": "the suite's own",
        "OTHER_VARIABLE": "not ours",
    }
    settings = load_settings(DEFAULT, env)
    assert settings.data_dir == tmp_path
    assert settings.database_url == "postgresql://u:p@db/maildesk"
    assert settings.limits.max_attachment_bytes == 1024
    assert settings.mail.addresses == ("help@firma.de", "service@firma.de")


def test_bad_value_in_file_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[limits]\nmax_attachment_bytes = "lots"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, {})
    message = str(err.value)
    assert str(path) in message
    assert "limits.max_attachment_bytes" in message
    assert "'lots'" in message


def test_bad_value_from_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(DEFAULT, {"MAILDESK_LIMITS__MAX_MESSAGE_BYTES": "huge"})
    assert "MAILDESK_LIMITS__MAX_MESSAGE_BYTES" in str(err.value)
    assert "limits.max_message_bytes" in str(err.value)


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("[mail]\nadresses = []\n", "mail.adresses"),
        ("[mail]\naddresses = []\n", "mail.addresses"),
        ("[mail]\naddresses = ['support+x@example.com']\n", "mail.addresses"),
        ("[mail]\nsubject_tag = '[Ticket]'\n", "mail.subject_tag"),
        ("[[routes]]\naddress = 'a@b.de'\nrequest_type = 'wish'\n", "routes.0.request_type"),
        ("[log]\nlevel = 'LOUD'\n", "log.level"),
    ],
)
def test_invalid_keys_are_named(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "maildesk.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_settings(path, {})
    assert f"'{key}'" in str(err.value)
    assert str(path) in str(err.value)


def test_broken_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[mail\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, {})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", {})
