from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings, SettingsError, load_settings


def test_defaults_are_local_and_safe() -> None:
    settings = load_settings({})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.data_dir == Path("var")
    assert settings.embedded
    assert settings.pgdata_dir == Path("var/pgdata")
    assert settings.max_request_body_bytes <= 65_536


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {
        "TIPLINE_HOST": "0.0.0.0",  # noqa: S104  (a value under test, not a bind)
        "TIPLINE_PORT": "9001",
        "TIPLINE_DATA_DIR": "/srv/tipline",
        "DATABASE_URL": "postgresql://tipline_app@db/tipline",
        "TIPLINE_DB_COMMAND_TIMEOUT_S": "2.5",
    }
    settings = load_settings(env, port=9002)
    assert settings.host == "0.0.0.0"  # noqa: S104
    assert settings.port == 9002
    assert settings.data_dir == Path("/srv/tipline")
    assert settings.database_url == "postgresql://tipline_app@db/tipline"
    assert not settings.embedded
    assert settings.db_command_timeout_s == 2.5


def test_empty_variables_count_as_unset() -> None:
    assert load_settings({"TIPLINE_PORT": "", "DATABASE_URL": ""}) == Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TIPLINE_PORT", "eighty"),
        ("TIPLINE_PORT", "0"),
        ("TIPLINE_PORT", "65536"),
        ("TIPLINE_DB_POOL_MAX_SIZE", "0"),
        ("TIPLINE_DB_COMMAND_TIMEOUT_S", "-1"),
        ("TIPLINE_LOG_LEVEL", "CHATTY"),
        ("TIPLINE_MAX_REQUEST_BODY_BYTES", "lots"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_not_the_value(
    variable: str, value: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({variable: value})
    message = str(raised.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message
    assert value not in message.removeprefix(f"{variable}: ")
