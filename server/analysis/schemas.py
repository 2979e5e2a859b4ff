"""Analysis wire types."""

from __future__ import annotations

from uuid import UUID

import msgspec


class CompromisedLead(msgspec.Struct, frozen=True):
    lead_id: UUID
    # Officers who could read the lead before its first outcome was reported.
    officers: list[UUID]


class OfficerExposure(msgspec.Struct, frozen=True):
    officer_id: UUID
    handle: str
    # Leads whose outcome was "target gone" that this officer could read ...
    compromised: int
    # ... and leads with only other outcomes that they could read.
    clean: int
    # compromised / (compromised + clean): 1.0 means every lead they saw went wrong.
    ratio: float
    # compromised / every compromised lead: 1.0 means they could read all of them.
    coverage: float


class Exposure(msgspec.Struct, frozen=True):
    compromised_leads: list[CompromisedLead]
    # Most suspicious first: by compromised leads read, then ratio, then fewest clean ones.
    officers: list[OfficerExposure]


class Month(msgspec.Struct, frozen=True):
    month: str
    reports_received: int
    reports_verified: int
    leads: int
    raids: int
    arrests: int
    victims_safe: int


class Programme(msgspec.Struct, frozen=True):
    months: list[Month]
