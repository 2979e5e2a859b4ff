"""The server accepts real age v1 X25519 ciphertexts and nothing that only looks like one."""

from __future__ import annotations

import base64
import os

import pyrage
import pytest
from pyrage import passphrase, x25519

from clients.reference_client import envelope as client
from server.envelope.age_header import (
    MAX_HEADER_BYTES,
    AgeForm,
    MalformedEnvelope,
    check_age_ciphertext,
)
from server.errors import InvalidInput

MAX_RECIPIENTS = 8
MAX_BYTES = 1024 * 1024
CHUNK = 64 * 1024


def b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def key() -> bytes:
    return b64(os.urandom(32))


def x25519_stanza() -> bytes:
    return b"-> X25519 " + key() + b"\n" + key() + b"\n"


def age_file(*stanzas: bytes, mac: bytes | None = None, payload: bytes | None = None) -> bytes:
    mac_line = b"--- " + key() + b"\n" if mac is None else mac
    body = os.urandom(16 + 16 + 40) if payload is None else payload
    return b"age-encryption.org/v1\n" + b"".join(stanzas) + mac_line + body


def check(data: bytes, *, max_recipients: int = MAX_RECIPIENTS) -> AgeForm:
    return check_age_ciphertext(data, max_recipients=max_recipients, max_bytes=MAX_BYTES)


def refused(data: bytes, *, max_recipients: int = MAX_RECIPIENTS) -> str:
    with pytest.raises(MalformedEnvelope) as caught:
        check(data, max_recipients=max_recipients)
    return caught.value.reason


def recipients(count: int) -> list[x25519.Recipient]:
    return [x25519.Identity.generate().to_public() for _ in range(count)]


@pytest.mark.parametrize("count", [1, 2, MAX_RECIPIENTS])
@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17], ids=str
)
def test_a_pyrage_ciphertext_passes_with_its_recipient_count(count: int, size: int) -> None:
    ciphertext = pyrage.encrypt(os.urandom(size), recipients(count))
    form = check(ciphertext)
    assert form.recipients == count
    assert form.header_bytes + form.payload_bytes == len(ciphertext)
    assert ciphertext[form.header_bytes - 48 : form.header_bytes].startswith(b"--- ")


@pytest.mark.parametrize("size", [0, 1, 100, 1000, 5000, 70_000])
def test_the_clients_sealed_envelope_passes(size: int) -> None:
    identities = [x25519.Identity.generate() for _ in range(3)]
    sealed = client.seal(os.urandom(size), [str(i.to_public()) for i in identities])
    assert check(sealed).recipients == 3
    # The padded length, not the message length, is what the payload reveals.
    padded = client.padme_length(size + 4)
    chunks = -(-padded // CHUNK)
    assert check(sealed).payload_bytes == 16 + padded + 16 * chunks


def test_a_hand_built_minimal_file_passes() -> None:
    form = check(age_file(x25519_stanza(), payload=bytes(32)))
    assert form == AgeForm(recipients=1, header_bytes=22 + 98 + 48, payload_bytes=32)


def test_passphrase_encryption_is_refused() -> None:
    # Anyone who guesses the passphrase could read it; reports go to investigators' keys only.
    assert refused(passphrase.encrypt(b"report", "correct horse battery staple")) == "stanza"


def test_an_x25519_stanza_next_to_scrypt_is_still_refused() -> None:
    scrypt = b"-> scrypt " + b64(os.urandom(16)) + b" 18\n" + key() + b"\n"
    assert refused(age_file(x25519_stanza(), scrypt)) == "stanza"


def test_armored_files_are_refused() -> None:
    armored = pyrage.encrypt(b"report", recipients(1), armored=True)
    assert refused(armored) == "version"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is a plaintext report",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",  # a JPEG uploaded without encryption
        b"age-encryption.org/v2\n",
        b"age-encryption.org/v1",
        b" age-encryption.org/v1\n",
        b"AGE-ENCRYPTION.ORG/V1\n",
    ],
    ids=repr,
)
def test_anything_but_the_v1_line_is_refused(data: bytes) -> None:
    assert refused(data + x25519_stanza() + b"--- " + key() + b"\n" + bytes(32)) == "version"


@pytest.mark.parametrize(
    "stanza",
    [
        b"-> mlkem768x25519 " + b64(os.urandom(1120)) + b"\n" + key() + b"\n",
        b"-> piv-p256 " + b64(os.urandom(4)) + b" " + b64(os.urandom(33)) + b"\n" + key() + b"\n",
        b"-> example.com/enigma\n" + key() + b"\n",
        b"-> x25519 " + key() + b"\n" + key() + b"\n",
        b"-> X25519\n" + key() + b"\n",
        b"-> X25519 " + key() + b" extra\n" + key() + b"\n",
        b"-> X25519 " + b64(os.urandom(31)) + b"\n" + key() + b"\n",
        b"-> X25519 " + b64(os.urandom(33)) + b"\n" + key() + b"\n",
        b"-> X25519 " + key() + b"=\n" + key() + b"\n",
        b"-> X25519 " + key() + b"\n" + key() + b"=\n",
        b"-> X25519 " + key() + b"\n" + b64(os.urandom(31)) + b"\n",
        b"-> X25519 " + key() + b"\n" + b64(os.urandom(48)) + b"\n\n",
        b"-> X25519 " + key() + b"\n" + key()[:20] + b"\n" + key()[20:] + b"\n",
        b"-> X25519 " + key() + b"\n\n",
        b"-> X25519 -" + key()[1:] + b"\n" + key() + b"\n",
        b"-> X25519 " + base64.urlsafe_b64encode(b"\xfb" * 32).rstrip(b"=") + b"\n" + key() + b"\n",
        b"->  X25519 " + key() + b"\n" + key() + b"\n",
        b"-> X25519  " + key() + b"\n" + key() + b"\n",
        b"-> X25519 " + key() + b" \n" + key() + b"\n",
        b"-> X25519\t" + key() + b"\n" + key() + b"\n",
        b"-> X25519 " + key() + b"\n" + key() + b" \n",
        b"-> X25519 " + key() + b"\r\n" + key() + b"\n",
        b"-> X25519 " + key() + b"\n" + key() + b"\r\n",
        b"->X25519 " + key() + b"\n" + key() + b"\n",
        b" -> X25519 " + key() + b"\n" + key() + b"\n",
        b"\n",
    ],
    ids=lambda s: repr(s[:24]),
)
def test_every_other_stanza_or_spelling_is_refused(stanza: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        check(age_file(x25519_stanza(), stanza))
    with pytest.raises(MalformedEnvelope):
        check(age_file(stanza, x25519_stanza()))


@pytest.mark.parametrize("last", "BCDFGHJKLNOPRSTVWXZ", ids=str)
def test_non_canonical_base64_is_refused(last: str) -> None:
    # 43 characters carry 258 bits for 32 bytes: the last character's low 2 bits must be zero.
    # These characters set them, so the value decodes but is not the one canonical spelling.
    spelled = key()[:42] + last.encode()
    assert refused(age_file(b"-> X25519 " + spelled + b"\n" + key() + b"\n")) == "stanza"
    assert refused(age_file(b"-> X25519 " + key() + b"\n" + spelled + b"\n")) == "stanza"
    assert refused(age_file(x25519_stanza(), mac=b"--- " + spelled + b"\n")) == "mac"


def test_crlf_line_endings_are_refused() -> None:
    ciphertext = pyrage.encrypt(b"report", recipients(1))
    form = check(ciphertext)
    header = ciphertext[: form.header_bytes].replace(b"\n", b"\r\n")
    assert refused(header + ciphertext[form.header_bytes :]) == "version"
    header = ciphertext[: form.header_bytes]
    crlf_after_v1 = header[:22] + header[22:].replace(b"\n", b"\r\n")
    with pytest.raises(MalformedEnvelope):
        check(crlf_after_v1 + ciphertext[form.header_bytes :])


def grease(tag: bytes = b"x-grease", args: bytes = b"", body: bytes = b"") -> bytes:
    encoded = b64(body)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append(b"")
    return b"-> " + tag + args + b"\n" + b"".join(line + b"\n" for line in lines)


@pytest.mark.parametrize(
    "stanza",
    [
        grease(),
        grease(b"~-grease"),
        grease(b"]2i(-grease", b" efuW"),
        grease(b"12345678-grease", b" a b c d", os.urandom(100)),
        grease(body=os.urandom(48)),  # exactly one full line, then an empty final line
        grease(body=os.urandom(96)),  # two full lines, then an empty final line
    ],
    ids=repr,
)
def test_one_trailing_grease_stanza_of_rages_shape_is_accepted(stanza: bytes) -> None:
    # pyrage always writes one; refusing it would refuse every real client.
    assert check(age_file(x25519_stanza(), x25519_stanza(), stanza)).recipients == 2


@pytest.mark.parametrize(
    "stanzas",
    [
        (grease(),),  # no real recipient at all
        (grease(), x25519_stanza()),  # grease only ever comes last
        (x25519_stanza(), grease(), grease()),
        (x25519_stanza(), grease(b"123456789-grease")),
        (x25519_stanza(), grease(b"-grease")),
        (x25519_stanza(), grease(b"x-greasy")),
        (x25519_stanza(), grease(args=b" a b c d e")),
        (x25519_stanza(), grease(args=b" 123456789")),
        (x25519_stanza(), grease(args=b"  a")),
        (x25519_stanza(), grease(args=b" ")),
        (x25519_stanza(), grease(body=os.urandom(101))),
        (x25519_stanza(), grease(body=os.urandom(144))),
        (x25519_stanza(), b"-> x-grease\n" + b"A" * 65 + b"\n"),
        (x25519_stanza(), b"-> x-grease\n" + key() + b"=\n"),
        (x25519_stanza(), b"-> x-grease\n" + b"!!\n"),
    ],
    ids=lambda s: repr(b"".join(s)[-30:]),
)
def test_grease_of_any_other_shape_or_place_is_refused(stanzas: tuple[bytes, ...]) -> None:
    with pytest.raises(MalformedEnvelope):
        check(age_file(*stanzas))


def test_recipient_count_is_bounded() -> None:
    many = pyrage.encrypt(b"report", recipients(MAX_RECIPIENTS + 1))
    assert refused(many) == "recipients"
    assert check(many, max_recipients=MAX_RECIPIENTS + 1).recipients == MAX_RECIPIENTS + 1


def test_a_header_over_8_kib_is_refused_whatever_the_recipient_limit() -> None:
    stanzas = [x25519_stanza() for _ in range(MAX_HEADER_BYTES // 98 + 1)]
    assert refused(age_file(*stanzas), max_recipients=1000) == "header"
    fits = [x25519_stanza() for _ in range((MAX_HEADER_BYTES - 22 - 48) // 98)]
    assert check(age_file(*fits), max_recipients=1000).header_bytes <= MAX_HEADER_BYTES


def test_size_is_bounded_before_anything_else() -> None:
    ciphertext = pyrage.encrypt(os.urandom(1000), recipients(1))
    limits = {"max_recipients": MAX_RECIPIENTS}
    assert check_age_ciphertext(ciphertext, max_bytes=len(ciphertext), **limits).recipients == 1
    with pytest.raises(MalformedEnvelope) as caught:
        check_age_ciphertext(ciphertext, max_bytes=len(ciphertext) - 1, **limits)
    assert caught.value.reason == "size"
    with pytest.raises(MalformedEnvelope) as caught:
        check_age_ciphertext(b"x" * 2000, max_bytes=1999, **limits)
    assert caught.value.reason == "size"


@pytest.mark.parametrize(
    "mac",
    [
        b"",
        b"---\n",
        b"--- \n",
        b"---" + key() + b"\n",
        b"---  " + key() + b"\n",
        b"--- " + key() + b" \n",
        b"--- " + key() + b"=\n",
        b"--- " + b64(os.urandom(31)) + b"\n",
        b"--- " + b64(os.urandom(33)) + b"\n",
        b"--- " + key() + b"\r\n",
        b"---- " + key() + b"\n",
    ],
    ids=repr,
)
def test_the_mac_line_must_be_exact(mac: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        check(age_file(x25519_stanza(), mac=mac))


def test_a_missing_mac_line_is_refused() -> None:
    ciphertext = pyrage.encrypt(b"report", recipients(1))
    form = check(ciphertext)
    header = ciphertext[: form.header_bytes]
    without_mac = header[: header.rindex(b"--- ")] + ciphertext[form.header_bytes :]
    with pytest.raises(MalformedEnvelope):
        check(without_mac)


@pytest.mark.parametrize(
    "payload_bytes",
    [0, 1, 16, 31, 16 + CHUNK + 16 + 15, 16 + CHUNK + 16 + 16, 16 + 2 * (CHUNK + 16) + 1],
)
def test_payloads_no_encryptor_makes_are_refused(payload_bytes: int) -> None:
    assert refused(age_file(x25519_stanza(), payload=bytes(payload_bytes))) == "payload"


@pytest.mark.parametrize(
    "payload_bytes", [32, 33, 16 + CHUNK + 16, 16 + CHUNK + 16 + 17, 16 + 2 * (CHUNK + 16)]
)
def test_payloads_of_possible_lengths_pass(payload_bytes: int) -> None:
    assert check(age_file(x25519_stanza(), payload=bytes(payload_bytes))).recipients == 1


def test_truncation_anywhere_in_the_header_is_refused() -> None:
    ciphertext = pyrage.encrypt(b"", recipients(2))
    form = check(ciphertext)
    for end in range(form.header_bytes + 32):
        with pytest.raises(MalformedEnvelope):
            check(ciphertext[:end])


def test_mutations_give_a_domain_error_or_a_valid_form_never_a_crash() -> None:
    ciphertext = pyrage.encrypt(b"report", recipients(2))
    form = check(ciphertext)
    for position in range(form.header_bytes):
        for replacement in (b" ", b"\n", b"\r", b"=", b"\x00", b"-", b"\xff", b"A"):
            mutated = ciphertext[:position] + replacement + ciphertext[position + 1 :]
            try:
                result = check(mutated)
            except MalformedEnvelope:
                continue
            assert 1 <= result.recipients <= 2


def test_the_error_is_a_422_that_never_echoes_input() -> None:
    secret = b"MARKER-7f3a9c"
    with pytest.raises(MalformedEnvelope) as caught:
        check(b"age-encryption.org/v1\n-> " + secret + b"\n\n--- " + key() + b"\n" + bytes(32))
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert (error.status, error.slug) == (422, "malformed-envelope")
    assert secret.decode() not in f"{error} {error.detail} {error.title} {error.fields}"


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        check_age_ciphertext(b"", max_recipients=0, max_bytes=1)


def test_padding_round_trips_and_hides_all_but_the_bucket() -> None:
    sizes = set()
    for length in range(5000):
        message = os.urandom(length)
        padded = client.pad(message)
        assert len(padded) == client.padme_length(length + 4) >= length + 4
        assert len(padded) - length - 4 < 0.12 * (length + 4)
        assert padded[:4] == length.to_bytes(4, "big")
        assert not any(padded[4 + length :])
        assert client.unpad(padded) == message
        sizes.add(len(padded))
    # Exact lengths would give 5000 distinct sizes; PADME's buckets give far fewer.
    assert len(sizes) < 200


@pytest.mark.parametrize(
    "padded",
    [
        b"",
        b"\x00\x00\x00",
        b"\x00\x00\x00\x07hello\x00",  # declares more than it holds
        b"\x00\x00\x00\x05hello",  # 9 bytes: PADME(9) is 10
        b"\x00\x00\x00\x05hello\x00\x00",  # one byte too many
        b"\x00\x00\x00\x05hello\x01",  # padding that is not zero
        b"\xff\xff\xff\xffhello\x00",
    ],
    ids=repr,
)
def test_unpad_refuses_what_pad_never_makes(padded: bytes) -> None:
    with pytest.raises(client.EnvelopeError):
        client.unpad(padded)


def test_open_sealed_returns_the_exact_plaintext_only_to_a_recipient() -> None:
    ours, stranger = x25519.Identity.generate(), x25519.Identity.generate()
    sealed = client.seal(b"exact text \x00\n", [str(ours.to_public())])
    assert client.open_sealed(sealed, str(ours)) == b"exact text \x00\n"
    with pytest.raises(client.EnvelopeError):
        client.open_sealed(sealed, str(stranger))
    with pytest.raises(client.EnvelopeError):
        client.open_sealed(sealed[:-1], str(ours))
    with pytest.raises(client.EnvelopeError):
        client.open_sealed(sealed, "AGE-SECRET-KEY-1NOTAKEY")


def test_a_sealed_plaintext_that_was_not_padded_is_refused() -> None:
    ours = x25519.Identity.generate()
    unpadded = pyrage.encrypt(b"raw plaintext", [ours.to_public()])
    with pytest.raises(client.EnvelopeError):
        client.open_sealed(unpadded, str(ours))


@pytest.mark.parametrize("recipients", [[], ["age1notarecipient"], ["AGE-SECRET-KEY-1X"]])
def test_seal_refuses_anything_but_x25519_recipients(recipients: list[str]) -> None:
    with pytest.raises(client.EnvelopeError):
        client.seal(b"report", recipients)
