from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.mailauth.dkim import (
    MAX_SIGNATURES,
    DkimResult,
    DkimSigningError,
    public_key_record,
    sign_message,
    verify_message,
)
from kittiwake.resolver import DnsError, NoSuchDomain

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: lunch\r\n"
    b"Date: Sun, 22 Nov 2026 04:30:00 +0000\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"Received: from somewhere\r\n"
    b"\r\n"
    b"See you at noon.\r\n"
)


class FakeResolver:
    """TXT answers from a dict; a name mapped to an exception raises it, an absent name is NXDOMAIN."""

    def __init__(self, records: dict[str, list[bytes] | Exception]) -> None:
        self.records = records
        self.queries: list[str] = []

    async def txt(self, name: str) -> list[bytes]:
        self.queries.append(name)
        answer = self.records.get(name)
        if answer is None:
            raise NoSuchDomain(name)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def mx(self, name: str) -> list[tuple[int, str]]:
        raise NotImplementedError

    async def a(self, name: str) -> list[str]:
        raise NotImplementedError

    async def aaaa(self, name: str) -> list[str]:
        raise NotImplementedError

    async def ptr(self, address: str) -> list[str]:
        raise NotImplementedError

    async def tlsa(self, name: str) -> list[tuple[int, int, int, bytes]]:
        raise NotImplementedError


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def rsa_key() -> bytes:
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ed_key() -> bytes:
    return pem(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture
def resolver(rsa_key: bytes, ed_key: bytes) -> Iterator[FakeResolver]:
    yield FakeResolver(
        {
            "rsa._domainkey.example.org": [public_key_record(rsa_key).encode()],
            "ed._domainkey.example.org": [public_key_record(ed_key).encode()],
        }
    )


def rsa_signed(key: bytes, message: bytes = MESSAGE) -> bytes:
    return sign_message(message, domain="example.org", selector="rsa", private_key_pem=key) + message


def verify(message: bytes, resolver: FakeResolver) -> list[DkimResult]:
    return asyncio.run(verify_message(message, resolver))


def results(message: bytes, resolver: FakeResolver) -> list[str]:
    return [result.result for result in verify(message, resolver)]


def test_rsa_signature_passes(rsa_key: bytes, resolver: FakeResolver) -> None:
    [result] = verify(rsa_signed(rsa_key), resolver)
    assert (result.result, result.domain, result.selector, result.algorithm) == (
        "pass",
        "example.org",
        "rsa",
        "rsa-sha256",
    )
    assert result.partial_body is False
    assert resolver.queries == ["rsa._domainkey.example.org"]


def test_ed25519_signature_passes(ed_key: bytes, resolver: FakeResolver) -> None:
    header = sign_message(
        MESSAGE, domain="example.org", selector="ed", private_key_pem=ed_key, algorithm="ed25519-sha256"
    )
    [result] = verify(header + MESSAGE, resolver)
    assert (result.result, result.algorithm) == ("pass", "ed25519-sha256")


def test_altered_body_fails(rsa_key: bytes, resolver: FakeResolver) -> None:
    [result] = verify(rsa_signed(rsa_key).replace(b"noon", b"one"), resolver)
    assert result.result == "fail"
    assert "body hash" in result.reason


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Subject: lunch", b"Subject: dinner"),
        (b"To: bob@example.net", b"To: eve@example.net"),
        (b"From: Alice <alice@example.org>", b"From: Mallory <alice@example.org>"),
    ],
)
def test_altered_signed_header_fails(rsa_key: bytes, resolver: FakeResolver, old: bytes, new: bytes) -> None:
    assert results(rsa_signed(rsa_key).replace(old, new), resolver) == ["fail"]


def test_added_unsigned_header_still_passes(rsa_key: bytes, resolver: FakeResolver) -> None:
    assert results(b"X-Spam-Score: 0\r\nReceived: from relay\r\n" + rsa_signed(rsa_key), resolver) == ["pass"]


def test_added_second_from_fails_because_from_is_oversigned(rsa_key: bytes, resolver: FakeResolver) -> None:
    signed = rsa_signed(rsa_key)
    assert results(signed.replace(b"\r\n\r\n", b"\r\nFrom: mallory@evil.example\r\n\r\n", 1), resolver) == [
        "fail"
    ]


def test_relaxed_canonicalisation_tolerates_whitespace_changes(
    rsa_key: bytes, resolver: FakeResolver
) -> None:
    refolded = rsa_signed(rsa_key).replace(b"Subject: lunch", b"subject:   lunch  ")
    assert results(refolded, resolver) == ["pass"]


def test_missing_key_is_permerror(rsa_key: bytes) -> None:
    [result] = verify(rsa_signed(rsa_key), FakeResolver({}))
    assert result.result == "permerror"
    assert "no key record" in result.reason


def test_empty_answer_is_permerror(rsa_key: bytes) -> None:
    assert results(rsa_signed(rsa_key), FakeResolver({"rsa._domainkey.example.org": []})) == ["permerror"]


def test_dns_failure_is_temperror(rsa_key: bytes) -> None:
    resolver = FakeResolver({"rsa._domainkey.example.org": DnsError("SERVFAIL")})
    [result] = verify(rsa_signed(rsa_key), resolver)
    assert result.result == "temperror"
    assert "SERVFAIL" in result.reason


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"v=DKIM1; k=rsa; p=", "key revoked"),
        (b"v=DKIM1; k=ed25519; p=MCowBQYDK2VwAyEA", "inappropriate key algorithm"),
        (b"v=DKIM1; k=rsa; p=bm90IGEga2V5", "key syntax error"),
        (b"v=spf1 -all", "no DKIM key record"),
    ],
)
def test_unusable_key_record_is_permerror(rsa_key: bytes, record: bytes, reason: str) -> None:
    [result] = verify(rsa_signed(rsa_key), FakeResolver({"rsa._domainkey.example.org": [record]}))
    assert result.result == "permerror"
    assert reason in result.reason


def test_key_for_another_service_is_permerror(rsa_key: bytes) -> None:
    record = public_key_record(rsa_key).encode() + b"; s=tlsrpt"
    [result] = verify(rsa_signed(rsa_key), FakeResolver({"rsa._domainkey.example.org": [record]}))
    assert (result.result, result.reason) == ("permerror", "key not for email")


def test_dkim_record_is_found_among_other_txt_records(rsa_key: bytes) -> None:
    records = [b"v=spf1 -all", public_key_record(rsa_key).encode()]
    assert results(rsa_signed(rsa_key), FakeResolver({"rsa._domainkey.example.org": records})) == ["pass"]


def test_body_length_tag_is_flagged_as_partial_body(rsa_key: bytes, resolver: FakeResolver) -> None:
    pkcs1 = serialization.load_pem_private_key(rsa_key, password=None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    header = dkim.DKIM(MESSAGE).sign(
        b"rsa", b"example.org", pkcs1, canonicalize=(b"relaxed", b"relaxed"), length=True
    )
    extended = header + MESSAGE + b"Appended by a list: click here.\r\n"
    [result] = verify(extended, resolver)
    assert (result.result, result.partial_body) == ("pass", True)


def test_two_signatures_are_each_reported(rsa_key: bytes, ed_key: bytes, resolver: FakeResolver) -> None:
    ed_header = sign_message(
        MESSAGE, domain="example.org", selector="ed", private_key_pem=ed_key, algorithm="ed25519-sha256"
    )
    message = ed_header + rsa_signed(rsa_key)
    assert [(r.selector, r.result) for r in verify(message, resolver)] == [("ed", "pass"), ("rsa", "pass")]


def test_one_bad_signature_does_not_spoil_another(rsa_key: bytes, ed_key: bytes) -> None:
    ed_header = sign_message(
        MESSAGE, domain="example.org", selector="ed", private_key_pem=ed_key, algorithm="ed25519-sha256"
    )
    resolver = FakeResolver({"rsa._domainkey.example.org": [public_key_record(rsa_key).encode()]})
    assert results(ed_header + rsa_signed(rsa_key), resolver) == ["permerror", "pass"]


def test_signatures_sharing_a_key_cause_one_lookup(rsa_key: bytes, resolver: FakeResolver) -> None:
    header = sign_message(MESSAGE, domain="example.org", selector="rsa", private_key_pem=rsa_key)
    assert results(header + rsa_signed(rsa_key), resolver) == ["pass", "pass"]
    assert resolver.queries == ["rsa._domainkey.example.org"]


def test_only_the_first_signatures_are_evaluated(rsa_key: bytes, resolver: FakeResolver) -> None:
    header = sign_message(MESSAGE, domain="example.org", selector="rsa", private_key_pem=rsa_key)
    assert len(verify(header * (MAX_SIGNATURES + 3) + MESSAGE, resolver)) == MAX_SIGNATURES


def test_unsigned_message_gives_no_results(resolver: FakeResolver) -> None:
    assert verify(MESSAGE, resolver) == []


REQUIRED = "v=1; a=rsa-sha256; d=example.org; s=rsa; h=from:subject; bh=AAAA; b=AAAA"


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        ("v=1; d=example.org; s=rsa", "missing tags"),
        (REQUIRED.replace("v=1", "v=2"), "unknown version"),
        (REQUIRED.replace("rsa-sha256", "rsa-sha1"), "unacceptable algorithm"),
        (REQUIRED.replace("h=from:subject", "h=subject"), "From is not signed"),
        (REQUIRED + "; x=1000", "signature expired"),
        (REQUIRED.replace("s=rsa", "s=bad selector!"), "unusable s= or d="),
        (REQUIRED.replace("d=example.org", "d=exa mple"), "unusable s= or d="),
        (REQUIRED + "; i=@other.example", "bad signature field"),
    ],
)
def test_unprocessable_signature_is_neutral(resolver: FakeResolver, tags: str, reason: str) -> None:
    [result] = verify(f"DKIM-Signature: {tags}\r\n".encode() + MESSAGE, resolver)
    assert result.result == "neutral"
    assert reason in result.reason


def test_missing_tags_cause_no_lookup(resolver: FakeResolver) -> None:
    verify(b"DKIM-Signature: v=1; b=AAAA\r\n" + MESSAGE, resolver)
    assert resolver.queries == []


def test_sign_returns_one_crlf_terminated_field(rsa_key: bytes) -> None:
    header = sign_message(MESSAGE, domain="example.org", selector="rsa", private_key_pem=rsa_key)
    assert header.startswith(b"DKIM-Signature: ")
    assert header.endswith(b"\r\n")
    tags = dkim.util.parse_tag_value(header.split(b":", 1)[1])
    assert tags[b"c"] == b"relaxed/relaxed"
    assert tags[b"d"] == b"example.org"
    assert tags[b"t"].isdigit()


def test_default_signed_headers_oversign_from_and_skip_trace_fields(rsa_key: bytes) -> None:
    header = sign_message(MESSAGE, domain="example.org", selector="rsa", private_key_pem=rsa_key)
    signed = [name.strip() for name in dkim.util.parse_tag_value(header.split(b":", 1)[1])[b"h"].split(b":")]
    assert signed == [b"from", b"to", b"subject", b"date", b"message-id", b"from"]


def test_explicit_header_list_is_signed(rsa_key: bytes, resolver: FakeResolver) -> None:
    header = sign_message(
        MESSAGE, domain="example.org", selector="rsa", private_key_pem=rsa_key, headers=[b"From", b"Subject"]
    )
    signed = dkim.util.parse_tag_value(header.split(b":", 1)[1])[b"h"]
    assert signed.replace(b" ", b"") == b"from:subject"
    assert results((header + MESSAGE).replace(b"bob@", b"eve@"), resolver) == ["pass"]


def test_signing_without_from_is_refused(rsa_key: bytes) -> None:
    with pytest.raises(DkimSigningError, match="From"):
        sign_message(
            b"Subject: x\r\n\r\nbody\r\n", domain="example.org", selector="rsa", private_key_pem=rsa_key
        )


def test_header_list_without_from_is_refused(rsa_key: bytes) -> None:
    with pytest.raises(DkimSigningError, match="From"):
        sign_message(
            MESSAGE, domain="example.org", selector="rsa", private_key_pem=rsa_key, headers=[b"subject"]
        )


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_key_of_the_wrong_kind_is_refused(rsa_key: bytes, ed_key: bytes, algorithm: str) -> None:
    key = ed_key if algorithm == "rsa-sha256" else rsa_key
    with pytest.raises(DkimSigningError, match="needs an"):
        sign_message(
            MESSAGE,
            domain="example.org",
            selector="s",
            private_key_pem=key,
            algorithm=algorithm,  # type: ignore[arg-type]
        )


def test_unreadable_key_is_refused() -> None:
    with pytest.raises(DkimSigningError, match="unreadable"):
        sign_message(MESSAGE, domain="example.org", selector="s", private_key_pem=b"not a key")


def test_rsa_public_key_record(rsa_key: bytes) -> None:
    record = public_key_record(rsa_key)
    assert record.startswith("v=DKIM1; k=rsa; p=")
    public = serialization.load_der_public_key(base64.b64decode(record.split("p=")[1]))
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048


def test_ed25519_public_key_record_is_the_raw_key(ed_key: bytes) -> None:
    record = public_key_record(ed_key)
    assert record.startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(record.split("p=")[1])) == 32


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    message = b"DKIM-Signature: " + data + b"\r\n" + MESSAGE
    resolver = FakeResolver({})
    for result in asyncio.run(verify_message(message, resolver)):
        assert result.result in {"neutral", "permerror"}


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@example.org\r\nSubject: folded\r\n  over two lines\r\n\r\nbody\r\n",
        b"From:  a@example.org  \r\nSubject:\ttabs\t and  spaces \r\n\r\nline  with   runs \t\r\n\r\n\r\n",
        b"From: a@example.org\r\nTo: x@y.test\r\nTo: second@y.test\r\n\r\n",
        b"From: a@example.org\r\n\r\nno final line end",
        b"From: \xc3\xa9l\xc3\xa8ve <a@example.org>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\ncaf\xc3\xa9\r\n",
        b"From: a@example.org\nSubject: bare line feeds\n\nline  one \n\n",
        b"From: a@example.org\r\n\r\na carriage return before the line end\r\r\n\r\n",
        b"From: a@example.org\r\n\r\nlast line without a line end, then blanks\r\n  ",
    ],
)
def test_signatures_made_with_openssl_verify_with_dkimpy(
    rsa_key: bytes, resolver: FakeResolver, message: bytes
) -> None:
    signed = rsa_signed(rsa_key, message)
    record = public_key_record(rsa_key).encode()
    assert dkim.verify(signed, dnsfunc=lambda _name, timeout=5: record)
    (result,) = verify(signed, resolver)
    assert result.result == "pass", result.reason
