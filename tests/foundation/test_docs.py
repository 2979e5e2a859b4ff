from __future__ import annotations

from pathlib import Path

from server.settings import Settings, env_name

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [env_name(f) for f in Settings.__struct_fields__ if f"`{env_name(f)}`" not in text]
    assert missing == []
