from __future__ import annotations

from tests.leads.conftest import room

__all__ = ["room"]
