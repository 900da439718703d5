"""The DKIM verifier against dkimpy as an independent oracle: what dkimpy signs passes, what dkimpy finds
altered fails, and the canonical forms are byte for byte dkimpy's."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dkim
import dkim.canonicalization
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.fakes import FakeResolver

from kittiwake.mailauth.dkim import DkimResult, verify_message
from kittiwake.mailauth.dkim_verify import (
    _B_TAG,
    THREAD_BODY_SIZE,
    _parse_fields,
    _parse_lines,
    _relaxed_values,
    canonical_body,
    crlf_lines,
    relaxed_header,
)

DOMAIN = "example.org"
MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.net,\r\n\tcarol@example.net\r\n"
    b"Subject:  Lunch   plans \t\r\n"
    b"Date: Sun, 22 Nov 2026 04:30:00 +0000\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"\r\n"
    b"See you at  noon.\t \r\n"
    b"\r\n"
    b"  Indented line\r\n"
    b"\r\n\r\n"
)
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id"]
CANONICALISATIONS = [(header, body) for header in ("simple", "relaxed") for body in ("simple", "relaxed")]


@dataclass(frozen=True)
class Keys:
    rsa: bytes  # PKCS#1 PEM, the form dkimpy signs with
    ed25519: bytes  # the base64 seed, the form dkimpy signs with
    weak: bytes  # a 511-bit RSA key, PKCS#1 PEM
    records: dict[str, list[bytes]]


def _probable_prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | 1 << (bits - 1) | 1
        if all(pow(base, candidate - 1, candidate) == 1 for base in (2, 3, 5, 7, 11, 13, 17, 19, 23)):
            return candidate


def _weak_rsa_key() -> rsa.RSAPrivateKey:
    """A key too small for RFC 8301, which cryptography no longer generates."""
    p, q, e = _probable_prime(256), _probable_prime(256), 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q),
    )  # fmt: skip
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def _pkcs1(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _p(public: bytes) -> bytes:
    return base64.b64encode(public)


@pytest.fixture(scope="module")
def keys() -> Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    weak = _weak_rsa_key()
    spki = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs1 = rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    raw = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    weak_spki = weak.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    records = {
        "rsa": b"v=DKIM1; k=rsa; p=" + _p(spki),
        "pkcs1": b"v=DKIM1; k=rsa; p=" + _p(pkcs1),
        "strict": b"v=DKIM1; k=rsa; t=y:s; p=" + _p(spki),
        "revoked": b"v=DKIM1; k=rsa; p=",
        "weak": b"v=DKIM1; k=rsa; p=" + _p(weak_spki),
        "ed": b"v=DKIM1; k=ed25519; p=" + _p(raw),
    }
    seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return Keys(
        rsa=_pkcs1(rsa_key),
        ed25519=base64.b64encode(seed),
        weak=_pkcs1(weak),
        records={f"{selector}._domainkey.{DOMAIN}": [record] for selector, record in records.items()},
    )


def sign(
    keys: Keys,
    message: bytes = MESSAGE,
    *,
    selector: str = "rsa",
    canonicalize: tuple[str, str] = ("relaxed", "relaxed"),
    length: bool = False,
    identity: bytes | None = None,
    headers: Sequence[bytes] = SIGNED,
    extra_tags: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """`message` with a DKIM-Signature field made by dkimpy."""
    algorithm = b"ed25519-sha256" if selector == "ed" else b"rsa-sha256"
    key = {"ed": keys.ed25519, "weak": keys.weak}.get(selector, keys.rsa)
    signer = dkim.DKIM(message, signature_algorithm=algorithm)
    if extra_tags:
        # dkimpy's sign() takes no x=; the builder it calls gets the tag list, b= last.
        build = signer.gen_header

        def with_extra_tags(fields: list[tuple[bytes, bytes]], *args: Any) -> bytes:
            return build([*fields[:-1], *extra_tags, fields[-1]], *args)  # type: ignore[no-any-return]

        signer.gen_header = with_extra_tags
    field = signer.sign(
        selector.encode(),
        DOMAIN.encode(),
        key,
        identity=identity,
        canonicalize=(canonicalize[0].encode(), canonicalize[1].encode()),
        include_headers=list(headers),
        length=length,
    )
    return bytes(field) + message


def verify(message: bytes, keys: Keys) -> list[DkimResult]:
    return asyncio.run(verify_message(message, FakeResolver(txt_records=keys.records)))


def verdict(message: bytes, keys: Keys) -> DkimResult:
    [result] = verify(message, keys)
    return result


def dkimpy_passes(message: bytes, keys: Keys) -> bool:
    """dkimpy's verdict on the topmost signature, with its default 1024-bit minimum."""

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return keys.records.get(name.decode().rstrip(".").lower(), [b""])[0]

    try:
        return bool(dkim.verify(message, dnsfunc=dnsfunc))
    except Exception:  # dkimpy raises assorted errors on what it cannot read; all of them are "no"
        return False


@pytest.mark.parametrize("length", [False, True])
@pytest.mark.parametrize("canonicalize", CANONICALISATIONS)
@pytest.mark.parametrize("selector", ["rsa", "ed"])
def test_dkimpy_signatures_pass(
    keys: Keys, selector: str, canonicalize: tuple[str, str], length: bool
) -> None:
    signed = sign(keys, selector=selector, canonicalize=canonicalize, length=length)
    assert dkimpy_passes(signed, keys)
    result = verdict(signed, keys)
    assert (result.result, result.reason) == ("pass", "signature verified")
    assert (result.domain, result.selector, result.partial_body) == (DOMAIN, selector, length)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Lunch", b"Lunsh"),
        (b"carol@", b"karol@"),
        (b"Alice", b"alice"),
        (b"noon", b"nOon"),
        (b"Indented", b"Indentad"),
    ],
)
@pytest.mark.parametrize("canonicalize", [("simple", "simple"), ("relaxed", "relaxed")])
@pytest.mark.parametrize("selector", ["rsa", "ed"])
def test_one_changed_byte_fails(
    keys: Keys, selector: str, canonicalize: tuple[str, str], old: bytes, new: bytes
) -> None:
    altered = sign(keys, selector=selector, canonicalize=canonicalize).replace(old, new)
    assert not dkimpy_passes(altered, keys)
    assert verdict(altered, keys).result == "fail"


@pytest.mark.parametrize(
    ("old", "new", "simple_passes"),
    [
        (b"Subject:  Lunch   plans \t\r\n", b"subject:\tLunch\r\n   plans\r\n", False),
        (b"To: bob@example.net,\r\n\tcarol", b"To:bob@example.net, carol", False),
        (b"See you at  noon.\t \r\n", b"See  you at\tnoon.\r\n", False),
        (b"  Indented line\r\n\r\n\r\n", b"  Indented line\r\n", True),  # §3.4.3: empty lines at the end
        (b"  Indented line\r\n\r\n\r\n", b"  Indented line\r\n\r\n\r\n\r\n\r\n", True),
    ],
)
def test_relaxed_tolerates_whitespace_and_folding(
    keys: Keys, old: bytes, new: bytes, simple_passes: bool
) -> None:
    relaxed = sign(keys, canonicalize=("relaxed", "relaxed")).replace(old, new)
    assert dkimpy_passes(relaxed, keys)
    assert verdict(relaxed, keys).result == "pass"
    simple = sign(keys, canonicalize=("simple", "simple")).replace(old, new)
    assert dkimpy_passes(simple, keys) is simple_passes
    assert verdict(simple, keys).result == ("pass" if simple_passes else "fail")


def _add_field(message: bytes, field: bytes, *, above: bool) -> bytes:
    if above:
        return field + message
    return message.replace(b"\r\n\r\n", b"\r\n" + field.rstrip(b"\r\n") + b"\r\n\r\n", 1)


@pytest.mark.parametrize(
    ("headers", "added", "above", "expected"),
    [
        # §5.4.2: fields are taken bottom up, so one added above those signed is not covered, and changes nothing
        (SIGNED, b"Subject: other\r\n", True, "pass"),
        (SIGNED, b"Subject: other\r\n", False, "fail"),
        # oversigned: a name with no field left signs the absence of one more
        ([*SIGNED, b"subject"], b"Subject: other\r\n", True, "fail"),
        ([*SIGNED, b"cc"], b"Cc: eve@example.net\r\n", True, "fail"),
        ([*SIGNED, b"cc"], b"X-Unsigned: yes\r\n", True, "pass"),
        # a second From fails even when not oversigned, as in dkimpy (RFC 6376 §8.15)
        (SIGNED, b"From: mallory@example.net\r\n", True, "fail"),
    ],
)
def test_fields_are_chosen_bottom_up_and_oversigning_holds(
    keys: Keys, headers: list[bytes], added: bytes, above: bool, expected: str
) -> None:
    message = _add_field(sign(keys, headers=headers), added, above=above)
    assert dkimpy_passes(message, keys) is (expected == "pass")
    assert verdict(message, keys).result == expected


def test_name_without_field_signs_nothing(keys: Keys) -> None:
    assert verdict(sign(keys, headers=[*SIGNED, b"cc", b"reply-to", b"from"]), keys).result == "pass"


def test_identity_outside_the_signing_domain_is_neutral(keys: Keys) -> None:
    signed = sign(keys, identity=b"alice@badexample.org")  # dkimpy signs it: "badexample.org" ends alike
    assert not dkimpy_passes(signed, keys)
    result = verdict(signed, keys)
    assert result.result == "neutral"
    assert "i= is not within d=" in result.reason


def test_identity_in_a_subdomain_passes(keys: Keys) -> None:
    result = verdict(sign(keys, identity=b"alice@mail.example.org"), keys)
    assert (result.result, result.identity) == ("pass", "alice@mail.example.org")


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (None, "pass"),
        (b"@example.org", "pass"),
        (b"alice@example.org", "pass"),
        (b"@mail.example.org", "permerror"),
    ],
)
def test_key_flag_s_requires_the_identity_in_the_signing_domain_itself(
    keys: Keys, identity: bytes | None, expected: str
) -> None:
    result = verdict(sign(keys, selector="strict", identity=identity), keys)
    assert result.result == expected
    if expected == "permerror":
        assert "t=s" in result.reason


def test_revoked_key_is_permerror(keys: Keys) -> None:
    result = verdict(sign(keys, selector="revoked"), keys)
    assert (result.result, result.reason) == ("permerror", "key revoked")


def test_key_smaller_than_1024_bits_is_permerror(keys: Keys) -> None:
    signed = sign(keys, selector="weak")
    assert not dkimpy_passes(signed, keys)
    result = verdict(signed, keys)
    assert result.result == "permerror"
    assert "too small" in result.reason


def test_bare_rsa_public_key_is_accepted(keys: Keys) -> None:
    assert verdict(sign(keys, selector="pkcs1"), keys).result == "pass"


def test_expired_signature_is_neutral(keys: Keys) -> None:
    signed = sign(keys, extra_tags=[(b"x", str(int(time.time()) - 60).encode())])
    result = verdict(signed, keys)
    assert (result.result, result.reason) == ("neutral", "signature expired")


def test_signature_not_yet_expired_passes(keys: Keys) -> None:
    signed = sign(keys, extra_tags=[(b"x", str(int(time.time()) + 3600).encode())])
    assert dkimpy_passes(signed, keys)
    assert verdict(signed, keys).result == "pass"


FIELD_TAGS = {"v": "1", "a": "rsa-sha256", "d": DOMAIN, "s": "rsa", "h": "from", "bh": "AAAA", "b": "AAAA"}


def made_up_signature(changes: dict[str, str], suffix: str = "") -> bytes:
    tags = "; ".join(f"{name}={value}" for name, value in {**FIELD_TAGS, **changes}.items())
    return f"DKIM-Signature: {tags}{suffix}\r\n".encode() + MESSAGE


@pytest.mark.parametrize(
    ("changes", "suffix", "reason"),
    [
        ({"t": str(int(time.time()) + 3600), "x": str(int(time.time()) + 1800)}, "", "x= is earlier than t="),
        ({"t": str(int(time.time()) + 86400)}, "", "t= is in the future"),
        ({"t": "12ab"}, "", "t= is not a decimal integer"),
        ({"l": "-1"}, "", "l= is not a decimal integer"),
        ({"q": "dns/other"}, "", "q= is not dns/txt"),
        ({"c": "relaxed/loose"}, "", "unknown canonicalisation"),
        ({}, "; b=AAAA", "duplicate tag b="),
        ({}, "; junk", "malformed tag"),
        ({"bh": "A=AA"}, "", "not base64"),
        ({"b": "AAAAA"}, "", "not base64"),
        ({"d": "example.org;"}, "", "malformed tag"),
        ({"i": "alice"}, "", "i= is not within d="),
    ],
)
def test_invalid_signature_fields_are_neutral(
    keys: Keys, changes: dict[str, str], suffix: str, reason: str
) -> None:
    result = verdict(made_up_signature(changes, suffix), keys)
    assert result.result == "neutral"
    assert reason in result.reason


def test_timestamps_of_thousands_of_digits_are_taken_as_infinite(keys: Keys) -> None:
    # RFC 6376 §3.5: more than 12 digits may be taken as infinite; the signature is processed, and the
    # made-up hashes do not match.
    result = verdict(made_up_signature({"t": "1" * 5000, "x": "9" * 5000}), keys)
    assert result.result == "neutral"
    assert "t= is in the future" in result.reason
    result = verdict(made_up_signature({"x": "9" * 5000}), keys)
    assert (result.result, result.reason) == ("fail", "body hash mismatch")


def test_body_shorter_than_length_tag_fails(keys: Keys) -> None:
    signed = sign(keys, length=True, canonicalize=("simple", "simple"))
    result = verdict(signed.replace(b"  Indented line\r\n", b""), keys)
    assert result.result == "fail"
    assert "shorter than l=" in result.reason


def test_content_after_length_tag_is_not_covered(keys: Keys) -> None:
    extended = sign(keys, length=True) + b"Appended by a list.\r\n"
    assert dkimpy_passes(extended, keys)
    result = verdict(extended, keys)
    assert (result.result, result.partial_body) == ("pass", True)


def test_unreadable_header_is_permerror(keys: Keys) -> None:
    signed = sign(keys).replace(b"\r\nSubject:", b"\r\nno colon here\r\nSubject:", 1)
    assert not dkimpy_passes(signed, keys)
    result = verdict(signed, keys)
    assert (result.result, result.reason) == ("permerror", "message header cannot be parsed")


def test_bare_line_feeds_are_line_ends(keys: Keys) -> None:
    signed = sign(keys, canonicalize=("simple", "simple"))
    assert verdict(signed.replace(b"\r\n", b"\n"), keys).result == "pass"


def test_signatures_sharing_a_canonicalisation_both_pass(keys: Keys) -> None:
    message = sign(keys, sign(keys, selector="ed"))
    assert [(r.selector, r.result) for r in verify(message, keys)] == [("rsa", "pass"), ("ed", "pass")]


@pytest.mark.parametrize("canonicalize", [("simple", "simple"), ("relaxed", "relaxed")])
def test_large_body_is_verified(keys: Keys, canonicalize: tuple[str, str]) -> None:
    line = b"a line of a large attachment, base64 or so, seventy-odd octets wide....\r\n"
    message = MESSAGE + line * (THREAD_BODY_SIZE // len(line) + 10)
    signed = sign(keys, message, canonicalize=canonicalize)
    assert verdict(signed, keys).result == "pass"
    altered = signed[:-40] + b"A" + signed[-39:]
    assert verdict(altered, keys).result == "fail"


# Random mutations of signed messages: never an exception, and pass exactly when dkimpy passes.

MUTATION_BYTES = b" \t\r\n:;=@.-abAB0\x00\xff"
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete"]),
        st.integers(min_value=0, max_value=10**6),
        st.sampled_from([bytes([byte]) for byte in MUTATION_BYTES]),
    ),
    min_size=1,
    max_size=3,
)
MUTATED_SIGNATURES = [
    {"selector": "rsa", "canonicalize": ("relaxed", "relaxed")},
    {"selector": "rsa", "canonicalize": ("simple", "simple"), "length": True},
    {"selector": "ed", "canonicalize": ("relaxed", "simple")},
    {"selector": "ed", "canonicalize": ("simple", "relaxed"), "length": True},
]


@pytest.fixture(scope="module")
def signed_messages(keys: Keys) -> list[bytes]:
    return [sign(keys, **options) for options in MUTATED_SIGNATURES]  # type: ignore[arg-type]


def _mutate(message: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    for operation, where, byte in mutations:
        at = where % (len(message) + 1)
        if operation == "insert":
            message = message[:at] + byte + message[at:]
        elif at < len(message):
            message = message[:at] + (byte if operation == "replace" else b"") + message[at + 1 :]
    return message


@settings(max_examples=300, deadline=None)
@given(which=st.integers(min_value=0, max_value=len(MUTATED_SIGNATURES) - 1), mutations=MUTATIONS)
def test_mutations_get_dkimpys_verdict(
    keys: Keys, signed_messages: list[bytes], which: int, mutations: list[tuple[str, int, bytes]]
) -> None:
    message = _mutate(signed_messages[which], mutations)
    results = verify(message, keys)
    passed = bool(results) and results[0].result == "pass"
    assert passed == dkimpy_passes(message, keys), [r.reason for r in results]


# The canonical forms, byte for byte those of dkimpy.

TEXT = st.lists(
    st.sampled_from([b"a", b"b", b" ", b"  ", b"\t", b"\r", b"\n", b"\r\n", b"\x0b"]), max_size=40
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(TEXT)
@example(b"")
@example(b"\r\n\r\n")
@example(b"a \t\r\n\r\n  ")
@example(b"a\r\r\n\r\n")
@example(b"a\n\n\r")
def test_body_canonicalisation_is_dkimpys(body: bytes) -> None:
    lines = re.sub(rb"\r?\n", b"\r\n", body)
    assert crlf_lines(body) == lines
    assert canonical_body(lines, relaxed=False) == dkim.canonicalization.Simple.canonicalize_body(lines)
    assert canonical_body(lines, relaxed=True) == dkim.canonicalization.Relaxed.canonicalize_body(lines)


@settings(max_examples=500, deadline=None)
@given(TEXT)
@example(b" \t a \r\n\t b\x0b\r\n")
def test_relaxed_header_is_dkimpys(value: bytes) -> None:
    [(name, canonical)] = dkim.canonicalization.Relaxed.canonicalize_headers([(b"Subject", value)])
    assert relaxed_header(b"Subject", value) + b"\r\n" == name + b":" + canonical


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from([b"b", b"=", b";", b" ", b"\t", b"\r\n", b"\n", b"A", b"h", b"/"]), max_size=30)
)
@example([b" ", b"b", b"=", b"A", b"\r\n"])
@example([b";", b"b", b" ", b"=", b"\r\n", b"\t", b"A", b"/", b" ", b";", b"h", b"=", b"A"])
@example([b" ", b"b", b"=", b"\n"])
def test_signature_value_is_emptied_as_dkimpy_empties_it(parts: list[bytes]) -> None:
    value = b"".join(parts)
    assert _B_TAG.sub(rb"\1", value) == dkim.RE_BTAG.sub(rb"\1", value)


# The header read one regex match per field, and relaxed values made all at once, as line by line and
# field by field.

HEADER_LINES = st.lists(
    st.lists(
        st.sampled_from([b"a", b"B", b":", b" ", b"  ", b"\t", b"\r", b"\x0b", b"From ", b"X-b:"]), max_size=8
    ).map(b"".join),
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(HEADER_LINES, st.sampled_from([b"\r\n", b"\n"]))
@example([b"A: x", b" y", b"\tz", b"B:"], b"\r\n")
@example([b"A: x\r", b"B:\t \x0b"], b"\r\n")
@example([b" x", b"A: y"], b"\r\n")
def test_header_reading_and_relaxed_values_agree(lines: list[bytes], end: bytes) -> None:
    header = b"".join(line + end for line in lines)
    fields, readable = _parse_fields(header)
    assert (fields, readable) == _parse_lines(header)
    if fields:
        values = _relaxed_values([value for _name, value in fields])
        assert [name.lower() + b":" + value for (name, _), value in zip(fields, values, strict=True)] == [
            relaxed_header(name, value) for name, value in fields
        ]
