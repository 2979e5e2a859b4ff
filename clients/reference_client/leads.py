"""Leads on the investigator's desk and the officer's phone: sealing shares with trace codes,
opening them, and tracing a leaked copy back to its share.

Every share is encrypted to one officer's age recipient from the signed key directory. Its
plaintext carries a random trace code, and the wording of the lead is varied deterministically
from that code, so each officer's copy reads slightly differently. The server receives only the
SHA-256 of the code. A leaked copy, even one paragraph of it, is matched against the copies this
desk made (`trace`): by the code when it survived, else by the wording.

Written from docs/protocol.md, never from the server's code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from clients.reference_client.api import Session, TiplineClient, decode, raise_for_problem
from clients.reference_client.envelope import EnvelopeError, open_sealed, seal, sha256_hex
from clients.reference_client.keys import Directory

TRACE_PREFIX: Final = "TL"
# 120 random bits (24 base32 characters): unguessable, yet short enough to read out.
TRACE_CODE_BYTES: Final = 15
_TRACE_CODE = re.compile(rf"\b{TRACE_PREFIX}(?:-[A-Z2-7]{{4}}){{6}}\b")
_VARIANT_CONTEXT: Final = b"tipline-trace-wording-v1"
# When sealing copies of one lead for several officers, draw codes until every paragraph that
# can vary reads differently from the other copies; this many draws is plenty in practice.
MAX_CODE_DRAWS: Final = 64
SHINGLE: Final = 3

# Interchangeable wordings. Which one a copy uses at each place is chosen by its trace code, so
# copies differ in ordinary words a leaker has no reason to change.
VARIANTS: Final[tuple[tuple[str, ...], ...]] = (
    # Each group is interchangeable wherever one of its forms appears in a lead.
    ("approximately", "roughly"),
    ("building", "property", "premises"),
    ("vehicle", "car"),
    ("observed", "noticed", "spotted"),
    ("individuals", "people", "persons"),
    ("located", "situated"),
    ("entrance", "doorway", "front door"),
    ("minors", "children"),
    ("manager", "boss", "person in charge"),
    ("guards", "watchmen", "lookouts"),
    ("street", "road"),
    ("nearby", "close by", "in the area"),
    ("usually", "normally", "typically", "generally"),
    ("evening", "night"),
    ("several", "a number of", "a few"),
    ("upstairs", "on the upper floor"),
    ("next to", "beside", "alongside"),
    ("large", "big", "sizeable"),
    ("before", "prior to"),
    ("arrive", "turn up", "show up"),
    ("owner", "proprietor"),
    ("customers", "clients", "patrons"),
    ("said", "stated"),
    ("often", "frequently", "regularly"),
    ("very", "really"),
    ("quickly", "rapidly"),
    ("money", "cash"),
    ("house", "residence"),
)
_FORM_TO_SLOT: Final = {form: group for group in VARIANTS for form in group}
_VARIANT_RE: Final = re.compile(
    r"\b(" + "|".join(re.escape(f) for f in sorted(_FORM_TO_SLOT, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


class TraceError(ValueError):
    pass


# --- wire types (only what the client uses; unknown members are tolerated) -----------------------


class Officer(msgspec.Struct, frozen=True):
    account_id: uuid.UUID
    handle: str
    unit: str
    rank: str
    review_due: str
    status: str
    review_overdue: bool
    cleared: bool
    proposed_by: uuid.UUID
    approved_by: uuid.UUID | None
    alerts: list[dict[str, Any]]
    readable: list[dict[str, Any]]


class ShareInfo(msgspec.Struct, frozen=True):
    id: uuid.UUID
    lead_id: uuid.UUID
    officer_id: uuid.UUID
    not_before: datetime
    expires_at: datetime
    trace_digest: str
    state: str
    readable_now: bool
    opens: int
    approved_by: uuid.UUID | None = None
    revoked_at: datetime | None = None
    acknowledged_at: datetime | None = None


class Assignment(msgspec.Struct, frozen=True):
    share_id: uuid.UUID
    lead_id: uuid.UUID
    not_before: datetime
    expires_at: datetime
    acknowledged: bool


class ShareContent(msgspec.Struct, frozen=True):
    id: uuid.UUID
    lead_id: uuid.UUID
    not_before: datetime
    expires_at: datetime
    directory_version: int
    ciphertext: bytes
    ciphertext_sha256: str


class SharedCopy(msgspec.Struct, frozen=True):
    """What the investigator's desk keeps of each share it made, to trace leaks later. It holds
    the trace code in clear, so it is kept encrypted (see `seal_records`)."""

    share_id: uuid.UUID
    lead_id: uuid.UUID
    officer_id: uuid.UUID
    trace_code: str
    text: str


class TraceMatch(msgspec.Struct, frozen=True):
    share_id: uuid.UUID
    officer_id: uuid.UUID
    # "code": the trace code itself was in the leaked text; "wording": the copy's wording was.
    method: str
    score: float
    runner_up: float


# --- trace codes and wording --------------------------------------------------------------------


def new_trace_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(TRACE_CODE_BYTES)).decode("ascii").rstrip("=")
    groups = [raw[i : i + 4] for i in range(0, len(raw), 4)]
    return "-".join([TRACE_PREFIX, *groups])


def trace_digest(code: str) -> str:
    return sha256_hex(code.encode("ascii"))


def _choices(code: str) -> Iterator[int]:
    # HMAC-SHA-256 in counter mode as a deterministic stream keyed by the code: the wording is
    # a function of the code alone, and without the code no one can predict it.
    counter = 0
    while True:
        block = hmac.new(
            code.encode("ascii"), _VARIANT_CONTEXT + counter.to_bytes(4, "big"), hashlib.sha256
        ).digest()
        yield from block
        counter += 1


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def vary_wording(text: str, code: str) -> str:
    """The lead text as this code's copy words it: each variable word, in order, takes the
    form the code's stream picks."""
    stream = _choices(code)

    def pick(match: re.Match[str]) -> str:
        group = _FORM_TO_SLOT[match.group(0).lower()]
        return _match_case(match.group(0), group[next(stream) % len(group)])

    return _VARIANT_RE.sub(pick, text)


def render_share_text(text: str, code: str) -> str:
    return f"{vary_wording(text, code)}\n\nRef: {code}\n"


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _distinct_from(candidate: str, others: Sequence[str]) -> bool:
    mine = paragraphs(candidate)
    for other in others:
        theirs = paragraphs(other)
        for a, b in zip(mine, theirs, strict=False):
            if _VARIANT_RE.search(a) and a == b:
                return False
    return True


def choose_code(text: str, others: Sequence[str] = ()) -> tuple[str, str]:
    """A fresh random code and the copy it words, differing paragraph by paragraph from the
    copies in `others` wherever the text leaves room to vary."""
    for _ in range(MAX_CODE_DRAWS):
        code = new_trace_code()
        rendered = render_share_text(text, code)
        if _distinct_from(rendered, others):
            return code, rendered
    return code, rendered


# --- sealing and opening ------------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def officer_recipient(directory: Directory, officer_id: uuid.UUID) -> str:
    for entry in directory.entries:
        if entry.account_id == officer_id and entry.role == "officer":
            return entry.age_recipient
    raise LookupError("the officer is not in the signed key directory")


def seal_lead(directory: Directory, text: str, report_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    """`POST /v1/leads` body: the lead text sealed to every investigator."""
    ciphertext = seal(text.encode("utf-8"), directory.investigator_recipients())
    return {
        "report_ids": [str(r) for r in report_ids],
        "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
        "directory_version": directory.version,
    }


def seal_share(
    directory: Directory,
    officer_id: uuid.UUID,
    text: str,
    *,
    not_before: datetime,
    expires_at: datetime,
    others: Sequence[str] = (),
) -> tuple[dict[str, Any], str, str]:
    """`POST /v1/leads/{id}/shares` body, the trace code, and the copy's text."""
    code, rendered = choose_code(text, others)
    ciphertext = seal(rendered.encode("utf-8"), [officer_recipient(directory, officer_id)])
    body = {
        "officer_id": str(officer_id),
        "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
        "directory_version": directory.version,
        "not_before": rfc3339(not_before),
        "expires_at": rfc3339(expires_at),
        "trace_digest": trace_digest(code),
    }
    return body, code, rendered


def open_share_text(content: ShareContent, identity: str) -> str:
    if sha256_hex(content.ciphertext) != content.ciphertext_sha256:
        raise EnvelopeError("the ciphertext does not match its digest")
    return open_sealed(content.ciphertext, identity).decode("utf-8")


def seal_records(records: Sequence[SharedCopy], own_recipient: str) -> bytes:
    """The desk's share records, sealed to the investigator's own age key."""
    return seal(msgspec.json.encode(list(records)), [own_recipient])


def open_records(sealed: bytes, identity: str) -> list[SharedCopy]:
    return msgspec.json.decode(open_sealed(sealed, identity), type=list[SharedCopy])


# --- tracing ------------------------------------------------------------------------------------


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + SHINGLE]) for i in range(max(0, len(words) - SHINGLE + 1))}


def trace(leaked_text: str, known: Sequence[SharedCopy]) -> TraceMatch:
    """Names the share a leaked text came from, or raises TraceError when it cannot tell."""
    if not known:
        raise TraceError("no shares to compare with")
    by_digest = {trace_digest(c.trace_code): c for c in known}
    for found in _TRACE_CODE.findall(leaked_text.upper()):
        hit = by_digest.get(trace_digest(found))
        if hit is not None:
            return TraceMatch(hit.share_id, hit.officer_id, "code", 1.0, 0.0)
    leaked = _shingles(leaked_text)
    if not leaked:
        raise TraceError("the leaked text is too short to compare")
    # Shingles every copy shares say nothing about which copy leaked; only the differing
    # wording counts.
    copies = [(c, _shingles(c.text)) for c in known]
    common = set.intersection(*(s for _, s in copies)) if len(copies) > 1 else set()
    scored = sorted(
        (
            (len((leaked & shingles) - common) / max(1, len(leaked - common)), copy)
            for copy, shingles in copies
        ),
        key=lambda pair: pair[0],
        reverse=True,
    )
    best, copy = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if best == 0.0 or best == runner_up:
        raise TraceError("the leaked text matches no single share")
    return TraceMatch(copy.share_id, copy.officer_id, "wording", best, runner_up)


# --- HTTP calls ---------------------------------------------------------------------------------


async def propose_officer(
    client: TiplineClient,
    session: Session | str,
    account_id: uuid.UUID,
    unit: str,
    rank: str,
    review_due: str,
) -> Officer:
    body = {"account_id": str(account_id), "unit": unit, "rank": rank, "review_due": review_due}
    return decode(await client.call("POST", "/v1/officers", session, json=body), Officer)


async def approve_officer(
    client: TiplineClient, session: Session | str, officer_id: uuid.UUID
) -> Officer:
    response = await client.call("POST", f"/v1/officers/{officer_id}/approve", session)
    return decode(response, Officer)


async def suspend_officer(
    client: TiplineClient, session: Session | str, officer_id: uuid.UUID
) -> None:
    raise_for_problem(await client.call("POST", f"/v1/officers/{officer_id}/suspend", session))


async def revoke_officer(
    client: TiplineClient, session: Session | str, officer_id: uuid.UUID
) -> None:
    raise_for_problem(await client.call("POST", f"/v1/officers/{officer_id}/revoke", session))


async def list_officers(client: TiplineClient, session: Session | str) -> list[Officer]:
    response = await client.call("GET", "/v1/officers", session)
    return decode(response, dict[str, list[Officer]])["officers"]


async def create_lead(
    client: TiplineClient,
    session: Session | str,
    directory: Directory,
    text: str,
    report_ids: Sequence[uuid.UUID],
) -> uuid.UUID:
    response = await client.call(
        "POST", "/v1/leads", session, json=seal_lead(directory, text, report_ids)
    )
    return uuid.UUID(decode(response, dict[str, Any])["id"])


async def share_lead(
    client: TiplineClient,
    session: Session | str,
    directory: Directory,
    lead_id: uuid.UUID,
    officer_id: uuid.UUID,
    text: str,
    *,
    not_before: datetime | None = None,
    hours: float = 24.0,
    others: Sequence[SharedCopy] = (),
) -> tuple[ShareInfo, SharedCopy]:
    start = not_before or datetime.now(UTC)
    body, code, rendered = seal_share(
        directory,
        officer_id,
        text,
        not_before=start,
        expires_at=start + timedelta(hours=hours),
        others=[o.text for o in others if o.lead_id == lead_id],
    )
    response = await client.call("POST", f"/v1/leads/{lead_id}/shares", session, json=body)
    info = decode(response, ShareInfo)
    return info, SharedCopy(info.id, lead_id, officer_id, code, rendered)


async def approve_share(
    client: TiplineClient, session: Session | str, share_id: uuid.UUID
) -> ShareInfo:
    response = await client.call("POST", f"/v1/shares/{share_id}/approve", session)
    return decode(response, ShareInfo)


async def revoke_share(client: TiplineClient, session: Session | str, share_id: uuid.UUID) -> None:
    raise_for_problem(await client.call("DELETE", f"/v1/shares/{share_id}", session))


async def lead_shares(
    client: TiplineClient, session: Session | str, lead_id: uuid.UUID
) -> list[ShareInfo]:
    response = await client.call("GET", f"/v1/leads/{lead_id}", session)
    raise_for_problem(response)
    return msgspec.convert(response.json()["shares"], list[ShareInfo])


async def access_log(
    client: TiplineClient, session: Session | str, lead_id: uuid.UUID
) -> list[dict[str, Any]]:
    response = await client.call("GET", f"/v1/leads/{lead_id}/access-log", session)
    entries: list[dict[str, Any]] = decode(response, dict[str, Any])["entries"]
    return entries


async def exposure(client: TiplineClient, session: Session | str) -> dict[str, Any]:
    return decode(await client.call("GET", "/v1/analysis/exposure", session), dict[str, Any])


async def assignments(client: TiplineClient, session: Session | str) -> list[Assignment]:
    response = await client.call("GET", "/v1/assignments", session)
    return decode(response, dict[str, list[Assignment]])["assignments"]


async def open_share(
    client: TiplineClient, session: Session | str, share_id: uuid.UUID, identity: str
) -> str:
    """Fetches a share (the server logs the read) and decrypts it with this device's age key."""
    content = decode(await client.call("GET", f"/v1/shares/{share_id}", session), ShareContent)
    return open_share_text(content, identity)


async def acknowledge(client: TiplineClient, session: Session | str, share_id: uuid.UUID) -> None:
    raise_for_problem(await client.call("POST", f"/v1/shares/{share_id}/ack", session))


async def report_outcome(
    client: TiplineClient,
    session: Session | str,
    directory: Directory | None,
    lead_id: uuid.UUID,
    outcome: str,
    *,
    arrests: int = 0,
    victims_safe: int = 0,
    note: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"outcome": outcome, "arrests": arrests, "victims_safe": victims_safe}
    if note is not None:
        if directory is None:
            raise ValueError("a note is sealed to the investigators of a verified directory")
        sealed = seal(note.encode("utf-8"), directory.investigator_recipients())
        body["note_ciphertext"] = base64.b64encode(sealed).decode("ascii")
        body["directory_version"] = directory.version
    response = await client.call("POST", f"/v1/leads/{lead_id}/outcome", session, json=body)
    return decode(response, dict[str, Any])
