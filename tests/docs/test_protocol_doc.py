"""docs/protocol.md is what a mobile team builds from, so it must not drift from the code.

Every route the app serves must be named there, every problem type must be named there or in
docs/errors.md, every vector it reproduces must equal tests/envelope/vectors.json, and the
vectors it adds (report without attachments, key directory, DPoP proof, the worked submission)
must be what the server and the reference client compute and accept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import typing
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from litestar.routes import HTTPRoute

from clients.reference_client import envelope as client
from clients.reference_client import keys as client_keys
from clients.reference_client.device import DeviceKeyPair, ath_for, b64url
from clients.reference_client.reports import TipReport
from server.app import create_app
from server.envelope import signatures as server
from server.envelope.age_header import check_age_ciphertext
from server.envelope.signatures import BadSignature
from server.errors import TiplineError
from server.events.kinds import EventKind
from server.identity import passwords
from server.identity.dpop import InvalidProof, access_token_hash, verify_proof
from server.keyring import generate_key_file
from server.keys import service as keys_service
from server.keys.schemas import SignedDirectory
from server.reports.schemas import ReportSubmission, Status
from server.reports.service import TRANSITIONS
from server.settings import Settings
from server.wire import decode_json

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
ERRORS_DOC = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
# Long values are wrapped in the document; whitespace is never part of a value.
FLAT = "".join(DOC.split())
VECTORS: dict[str, Any] = json.loads((ROOT / "tests" / "envelope" / "vectors.json").read_text())
REPORT: dict[str, Any] = VECTORS["report"]
MESSAGE: dict[str, Any] = VECTORS["message"]

# The inputs of the vectors the protocol document adds (§6.2-§6.4). Their outputs are not
# written here: the tests recompute them and require the document to show the same.
ROOT_PRIVATE_HEX = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"  # RFC 8032
ROOT_PUBLIC_HEX = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"  # TEST 2
SECOND_DEVICE_PUBLIC_HEX = "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025"
DIRECTORY_VERSION = 3
ISSUED_AT = "2026-11-30T06:00:00Z"
INVESTIGATOR_IDS = (
    UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
    UUID("a8098c1a-f86e-41da-b0d0-6e5f5b9e0c35"),
)
TOKEN_SOURCE = b"tipline-test-vector-token"
JTI = "tipline-test-vector-jti-0001"
IAT = 1796022000  # 2026-11-30T07:00:00Z
PUBLIC_URL = "https://tipline.example"


# --- helpers ------------------------------------------------------------------------------------


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def ed25519_device() -> DeviceKeyPair:
    d = b64url_decode(VECTORS["device_keys"]["ed25519"]["private_d"])
    return DeviceKeyPair(ed25519.Ed25519PrivateKey.from_private_bytes(d))


def root_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(ROOT_PRIVATE_HEX))


def root_public_b64() -> str:
    raw = (
        root_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode("ascii")


def marked_block(marker: str) -> str:
    """The first fenced block after `<!-- vector:<marker> -->`."""
    match = re.search(
        rf"<!-- vector:{re.escape(marker)} -->.*?```[a-z]*\n(?P<body>.*?)```", DOC, re.DOTALL
    )
    assert match is not None, f"docs/protocol.md has no block marked vector:{marker}"
    return match["body"]


def in_doc(value: str) -> bool:
    return "".join(value.split()) in FLAT


def report_ciphertext() -> bytes:
    return base64.b64decode(REPORT["ciphertext_base64"], validate=True)


def unattached_message() -> bytes:
    return server.report_message(
        UUID(REPORT["report_id"]), REPORT["sent_at"], REPORT["ciphertext_sha256"], []
    )


def unattached_signature() -> str:
    return client.sign_report(
        ed25519_device(), UUID(REPORT["report_id"]), REPORT["sent_at"], report_ciphertext()
    )


def directory_entries() -> list[client_keys.DirectoryEntry]:
    second_device = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(bytes.fromhex(SECOND_DEVICE_PUBLIC_HEX)),
    }
    return [
        client_keys.DirectoryEntry(
            account_id=INVESTIGATOR_IDS[0],
            age_recipient=VECTORS["age"]["recipients"][0],
            device_keys=[VECTORS["device_keys"]["p256"]["public_jwk"]],
            role="investigator",
        ),
        client_keys.DirectoryEntry(
            account_id=INVESTIGATOR_IDS[1],
            age_recipient=VECTORS["age"]["recipients"][1],
            device_keys=[second_device],
            role="investigator",
        ),
    ]


def directory_bytes() -> bytes:
    return client_keys.encode_directory(DIRECTORY_VERSION, directory_entries(), ISSUED_AT)


def signed_directory() -> client_keys.SignedDirectory:
    return client_keys.sign_bytes(root_key(), directory_bytes())


def access_token() -> str:
    return b64url(hashlib.sha256(TOKEN_SOURCE).digest())


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def dpop_proof() -> str:
    device = ed25519_device()
    header = {"typ": "dpop+jwt", "alg": device.alg, "jwk": device.public_jwk()}
    claims = {
        "jti": JTI,
        "htm": "POST",
        "htu": PUBLIC_URL + "/v1/reports",
        "iat": IAT,
        "ath": ath_for(access_token()),
    }
    signing_input = f"{b64url(_compact(header))}.{b64url(_compact(claims))}"
    return f"{signing_input}.{b64url(device.sign(signing_input.encode('ascii')))}"


def derived_values() -> dict[str, str]:
    """Every value of §6.2-§6.4 that is not in vectors.json, as the implementations make it."""
    signature = unattached_signature()
    message = unattached_message()
    signed = signed_directory()
    return {
        "unattached.message_hex": message.hex(),
        "unattached.message_sha256": hashlib.sha256(message).hexdigest(),
        "unattached.ed25519_signature": signature,
        "unattached.receipt": server.receipt_hash(
            UUID(REPORT["report_id"]),
            REPORT["received_at"],
            REPORT["ciphertext_sha256"],
            signature,
        ),
        "root.private_hex": ROOT_PRIVATE_HEX,
        "root.public_hex": ROOT_PUBLIC_HEX,
        "root.public_b64": root_public_b64(),
        "root.fingerprint": client_keys.root_fingerprint(root_public_b64()),
        "directory.second_device_x": b64url(bytes.fromhex(SECOND_DEVICE_PUBLIC_HEX)),
        "directory.bytes": directory_bytes().decode("ascii"),
        "directory.sha256": hashlib.sha256(directory_bytes()).hexdigest(),
        "directory.base64": signed.directory,
        "directory.signature": signed.signature,
        "dpop.token": access_token(),
        "dpop.ath": ath_for(access_token()),
        "dpop.thumbprint": ed25519_device().thumbprint(),
        "dpop.proof": dpop_proof(),
        "dpop.signature": dpop_proof().rsplit(".", 1)[1],
    }


# --- (a) every route is documented --------------------------------------------------------------


def _documented(method: str, path: str) -> bool:
    # "GET /v1/reports" must not be satisfied by "GET /v1/reports/{report_id}".
    pattern = rf"(?<![A-Z]){method} {re.escape(path)}(?![A-Za-z0-9_{{}}/:.-])"
    return re.search(pattern, DOC) is not None


def test_every_route_is_documented_as_method_and_path(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    generate_key_file(key_file)
    # create_app does not connect at construction; the URL only has to be present.
    settings = Settings(
        database_url="postgresql://tipline_app@127.0.0.1:1/unused", secret_key_file=key_file
    )
    app = create_app(settings)
    routes: set[tuple[str, str]] = set()
    for route in app.routes:
        # A websocket or mounted ASGI route would need its own section; fail until it has one.
        assert isinstance(route, HTTPRoute), f"{route.path} is not an HTTP route"
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for handler in route.route_handlers:
            # OPTIONS is the framework's automatic answer; the document says so once.
            routes.update((m, path) for m in getattr(handler, "http_methods", ()) if m != "OPTIONS")
    assert ("POST", "/v1/reports") in routes  # the walk found the real routes
    missing = sorted(f"{m} {p}" for m, p in routes if not _documented(m, p))
    assert missing == [], f"routes missing from docs/protocol.md: {missing}"


def test_the_route_check_tells_a_path_from_its_longer_sibling() -> None:
    assert _documented("GET", "/v1/reports")
    assert not _documented("GET", "/v1/reports/{nonexistent}")
    assert not _documented("DELETE", "/v1/reports")


# --- (c) every problem type is documented -------------------------------------------------------

_SLUG_PATTERNS = (
    re.compile(r"""\bslug\s*(?::\s*str\s*)?=\s*["']([a-z0-9-]+)["']"""),
    re.compile(r"""\bslug\s*,\s*title\s*=\s*["']([a-z0-9-]+)["']"""),
    re.compile(r"""\bstatus\s*,\s*slug\s*,\s*title\s*=\s*\d+\s*,\s*["']([a-z0-9-]+)["']"""),
)


def slugs_in_source() -> set[str]:
    found: set[str] = set()
    for source in (ROOT / "server").rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        for pattern in _SLUG_PATTERNS:
            found.update(pattern.findall(text))
    # The password policy names its problem types from its reasons (`password-<reason>`).
    found.update(f"password-{reason}" for reason in typing.get_args(passwords.Reason))
    return found


def _subclasses(cls: type[TiplineError]) -> set[type[TiplineError]]:
    result: set[type[TiplineError]] = set()
    for sub in cls.__subclasses__():
        result |= {sub} | _subclasses(sub)
    return result


def test_the_slug_scan_sees_every_error_class() -> None:
    # server.app imports every capability, so every error class is loaded by now; a slug the
    # regexes above cannot see would escape the documentation check below.
    declared = {TiplineError.slug} | {
        cls.__dict__["slug"]
        for cls in _subclasses(TiplineError)
        if isinstance(cls.__dict__.get("slug"), str)
    }
    assert declared - slugs_in_source() == set()
    assert {"outdated-directory", "stale-directory", "bad-signature"} <= declared


def test_every_problem_type_is_documented() -> None:
    def documented(slug: str) -> bool:
        return any(
            f"`{slug}`" in text or f"urn:tipline:problem:{slug}" in text
            for text in (DOC, ERRORS_DOC)
        )

    missing = sorted(slug for slug in slugs_in_source() if not documented(slug))
    assert missing == [], (
        f"problem types missing from docs/errors.md and docs/protocol.md: {missing}"
    )


# --- (b) the reproduced vectors are the published ones ------------------------------------------


def _reproduced() -> list[tuple[str, str]]:
    values = [
        ("device_keys.ed25519.private_d", VECTORS["device_keys"]["ed25519"]["private_d"]),
        ("device_keys.ed25519.x", VECTORS["device_keys"]["ed25519"]["public_jwk"]["x"]),
        ("device_keys.p256.private_d", VECTORS["device_keys"]["p256"]["private_d"]),
        ("device_keys.p256.x", VECTORS["device_keys"]["p256"]["public_jwk"]["x"]),
        ("device_keys.p256.y", VECTORS["device_keys"]["p256"]["public_jwk"]["y"]),
    ]
    values += [(f"age.identities[{i}]", v) for i, v in enumerate(VECTORS["age"]["identities"])]
    values += [(f"age.recipients[{i}]", v) for i, v in enumerate(VECTORS["age"]["recipients"])]
    values += [
        (f"report.{name}", REPORT[name])
        for name in (
            "report_id",
            "sent_at",
            "received_at",
            "ciphertext_base64",
            "ciphertext_sha256",
            "message_hex",
            "message_sha256",
            "ed25519_signature",
            "ed25519_receipt",
            "p256_signature",
            "p256_receipt",
        )
    ]
    for index, attachment in enumerate(REPORT["attachments"]):
        values += [(f"report.attachments[{index}].{k}", v) for k, v in attachment.items()]
    values += [
        (f"message.{name}", MESSAGE[name])
        for name in (
            "message_id",
            "sent_at",
            "ciphertext_sha256",
            "message_sha256",
            "ed25519_signature",
            "p256_signature",
        )
    ]
    return values


@pytest.mark.parametrize(("name", "value"), _reproduced(), ids=lambda v: str(v)[:40])
def test_each_reproduced_vector_value_is_in_the_document(name: str, value: str) -> None:
    assert in_doc(value), f"{name} from vectors.json is missing from docs/protocol.md"


@pytest.mark.parametrize(("name", "value"), sorted(derived_values().items()))
def test_each_derived_vector_value_is_in_the_document(name: str, value: str) -> None:
    assert in_doc(value), f"{name} as computed differs from docs/protocol.md (or is missing)"


def _known_values() -> list[str]:
    known = [value for _, value in _reproduced()] + list(derived_values().values())
    known += [a["attachment_id"] for a in REPORT["attachments"]]
    return ["".join(v.split()) for v in known]


HEX_64 = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{64}(?![0-9A-Za-z])")
B64URL_86 = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{86}(?![A-Za-z0-9_=-])")


def test_every_digest_and_signature_shown_is_a_checked_value() -> None:
    # The other direction: a stale hash or signature left in the document after the vectors
    # change would otherwise mislead a client author without failing anything.
    known = _known_values()
    shown = set(HEX_64.findall(DOC)) | set(B64URL_86.findall(DOC))
    assert len(shown) > 10  # the patterns do find the document's values
    unknown = sorted(v for v in shown if not any(v in k for k in known))
    assert unknown == [], f"values in docs/protocol.md that no test checks: {unknown}"


# --- the vectors the document adds are what the implementations compute and accept -------------


def test_the_unattached_report_is_signed_and_verified_alike_by_both_implementations() -> None:
    message = unattached_message()
    assert message == client.report_message(
        UUID(REPORT["report_id"]), REPORT["sent_at"], REPORT["ciphertext_sha256"], ()
    )
    # Without attachments the signed bytes are the vector's bytes up to its first attachment.
    assert bytes.fromhex(REPORT["message_hex"]).startswith(message)
    signature = unattached_signature()
    jwk = VECTORS["device_keys"]["ed25519"]["public_jwk"]
    server.verify_device_signature(jwk, message, signature)
    client.verify_signature(jwk, message, signature)
    receipt = derived_values()["unattached.receipt"]
    args = (UUID(REPORT["report_id"]), REPORT["received_at"], REPORT["ciphertext_sha256"])
    assert client.receipt_hash(*args, signature) == receipt
    with pytest.raises(BadSignature):
        server.verify_device_signature(jwk, message + b"\n", signature)


def test_the_directory_vector_verifies_on_both_sides_and_only_forward() -> None:
    root = root_key()
    assert root.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ) == bytes.fromhex(ROOT_PUBLIC_HEX)
    shown = marked_block("directory-bytes").strip().encode("ascii")
    assert shown == directory_bytes()
    wire = json.loads(marked_block("signed-directory"))
    signed = signed_directory()
    assert wire == msgspec.to_builtins(signed)

    raw, _, directory = keys_service.verify_signed(
        root.public_key(), msgspec.convert(wire, SignedDirectory)
    )
    assert raw == shown
    assert keys_service.investigator_recipients(directory) == VECTORS["age"]["recipients"]
    accepted = client_keys.verify_directory(signed, root_public_b64(), last_seen_version=3)
    assert accepted.version == DIRECTORY_VERSION
    with pytest.raises(client_keys.DirectoryError):
        client_keys.verify_directory(signed, root_public_b64(), last_seen_version=4)
    other_root = base64.b64encode(bytes.fromhex(SECOND_DEVICE_PUBLIC_HEX)).decode("ascii")
    with pytest.raises(client_keys.DirectoryError):
        client_keys.verify_directory(signed, other_root, last_seen_version=None)


def test_the_dpop_vector_is_accepted_by_the_server_for_exactly_its_request() -> None:
    proof = marked_block("dpop-proof").strip()
    assert proof == dpop_proof()
    token = access_token()
    assert access_token_hash(token) == ath_for(token)
    claims = verify_proof(
        proof,
        method="POST",
        url=PUBLIC_URL + "/v1/reports",
        now=IAT + 30,
        max_age_s=60,
        max_future_s=5,
        access_token=token,
        expected_thumbprint=ed25519_device().thumbprint(),
    )
    assert (claims.jti, claims.iat) == (JTI, IAT)
    wrong_requests: list[dict[str, Any]] = [
        {"method": "GET", "url": PUBLIC_URL + "/v1/reports", "now": IAT},
        {"method": "POST", "url": PUBLIC_URL + "/v1/keys", "now": IAT},
        {"method": "POST", "url": PUBLIC_URL + "/v1/reports", "now": IAT + 61},
    ]
    for request in wrong_requests:
        with pytest.raises(InvalidProof):
            verify_proof(
                proof,
                **request,
                max_age_s=60,
                max_future_s=5,
                access_token=token,
                expected_thumbprint=None,
            )


def test_the_worked_submission_passes_every_check_the_server_makes_without_a_database() -> None:
    body = marked_block("submission").encode("utf-8")
    submission = decode_json(body, ReportSubmission)  # strict: unknown fields would fail
    assert submission.report_id == UUID(REPORT["report_id"])
    assert submission.directory_version == DIRECTORY_VERSION
    form = check_age_ciphertext(submission.ciphertext, max_recipients=32, max_bytes=1 << 20)
    directory = msgspec.json.decode(directory_bytes(), type=keys_service.Directory)
    assert form.recipients == keys_service.investigator_count(directory)
    digest = hashlib.sha256(submission.ciphertext).hexdigest()
    assert digest == REPORT["ciphertext_sha256"]
    message = server.report_message(submission.report_id, submission.sent_at, digest, [])
    server.verify_device_signature(
        VECTORS["device_keys"]["ed25519"]["public_jwk"], message, submission.signature
    )
    # Both investigators' identities open what the operative sealed.
    for identity in VECTORS["age"]["identities"]:
        assert (
            client.open_sealed(submission.ciphertext, identity).decode()
            == (REPORT["plaintext_utf8"])
        )
    answer = json.loads(marked_block("receipt"))
    assert answer == {
        "report_id": str(submission.report_id),
        "received_at": REPORT["received_at"],
        "receipt": server.receipt_hash(
            submission.report_id, REPORT["received_at"], digest, submission.signature
        ),
    }


# --- tables that restate code -------------------------------------------------------------------


def test_the_transition_table_is_the_services() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+?) \|$", DOC, re.MULTILINE)
    documented = {
        Status(source): frozenset(Status(s) for s in re.findall(r"`([a-z_]+)`", targets))
        for source, targets in rows
        if source in Status.__members__.values()
    }
    assert documented == dict(TRANSITIONS)


def test_every_event_kind_and_report_field_is_documented() -> None:
    for kind in EventKind:
        assert f"`{kind.value}`" in DOC, kind
    for field in TipReport.__struct_fields__:
        assert f"| `{field}` |" in DOC, field
