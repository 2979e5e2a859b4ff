from __future__ import annotations

from tests.retention.conftest import site

__all__ = ["site"]
