"""Tip-off analysis: who could read the leads whose raids found the target gone.

No single "target gone" proves a leak (targets move), but an officer who could read every
compromised lead and few clean ones is where an investigation starts. The ranking is a lead
for humans, not a verdict; it reads ids and outcomes only, never content.
"""

from __future__ import annotations

from collections import Counter
from uuid import UUID

from server import db
from server.analysis import queries
from server.analysis.schemas import (
    CompromisedLead,
    Exposure,
    OfficerExposure,
    Programme,
)
from server.identity.principal import Principal, acting_as


async def exposure(pool: db.Pool, principal: Principal) -> Exposure:
    async with acting_as(pool, principal) as conn:
        judged = await queries.judged_leads(conn)
        handles = await queries.officer_handles(conn)
    compromised: Counter[UUID] = Counter()
    clean: Counter[UUID] = Counter()
    for lead in judged:
        (compromised if lead.compromised else clean).update(lead.officers)
    total = sum(1 for lead in judged if lead.compromised)
    ranked = [
        OfficerExposure(
            officer_id=officer,
            handle=handles.get(officer, ""),
            compromised=compromised[officer],
            clean=clean[officer],
            ratio=compromised[officer] / (compromised[officer] + clean[officer]),
            coverage=compromised[officer] / total if total else 0.0,
        )
        for officer in set(compromised) | set(clean)
    ]
    ranked.sort(key=lambda o: (-o.compromised, -o.ratio, o.clean, o.handle))
    return Exposure(
        compromised_leads=[
            CompromisedLead(lead_id=lead.lead_id, officers=lead.officers)
            for lead in judged
            if lead.compromised
        ],
        officers=ranked,
    )


async def programme(pool: db.Pool, principal: Principal) -> Programme:
    async with acting_as(pool, principal) as conn:
        return Programme(months=await queries.programme(conn))
