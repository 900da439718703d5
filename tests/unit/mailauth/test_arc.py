from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fakes import FakeResolver

from kittiwake.mailauth.arc import MAX_INSTANCES, ArcSealError, seal_message, verify_arc
from kittiwake.mailauth.dkim import public_key_record
from kittiwake.mailauth.results import arc_result, build_authentication_results, dkim_result, spf_result

# The validation cases of the public ARC test suite (MIT licence, see data/arc_test_suite.LICENSE.txt).
SUITE = json.loads((Path(__file__).parent / "data" / "arc_validation_tests.json").read_text("utf-8"))

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: list@lists.example\r\n"
    b"Subject: lunch\r\n"
    b"Date: Sun, 22 Nov 2026 04:30:00 +0000\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"\r\n"
    b"See you at noon.\r\n"
)


def suite_cases() -> list[Any]:
    cases = []
    for scenario in SUITE["scenarios"]:
        records = {name.lower(): [value.encode()] for name, value in scenario["txt-records"].items()}
        for name, case in scenario["tests"].items():
            cases.append(pytest.param(case["message"], case["cv"], records, id=name))
    return cases


@pytest.mark.parametrize(("message", "expected", "records"), suite_cases())
async def test_public_suite_validation_case_gets_its_expected_status(
    message: str, expected: str, records: dict[str, list[bytes]]
) -> None:
    wire = message.replace("\r\n", "\n").replace("\n", "\r\n").encode()
    result = await verify_arc(wire, FakeResolver(txt_records=records))
    # The suite writes an empty status where a seal recorded cv=fail; RFC 8617 §5.2 step 2 calls that fail.
    assert result.result == (expected.lower() or "fail")


@pytest.fixture(scope="module")
def rsa_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def resolver(rsa_key: bytes) -> FakeResolver:
    record = public_key_record(rsa_key).encode()
    return FakeResolver(
        txt_records={"arc._domainkey.lists.example": [record], "seal._domainkey.relay.example": [record]}
    )


def first_hop(key: bytes) -> bytes:
    """The message as the list server passes it on: its Authentication-Results and ARC set before it."""
    results = build_authentication_results(
        "lists.example",
        [
            spf_result("pass", "alice@example.org"),
            dkim_result("pass", domain="example.org", selector="s1", signature_prefix="abcdefghij"),
            arc_result("none"),
        ],
    )
    arc_set = seal_message(
        MESSAGE,
        domain="lists.example",
        selector="arc",
        private_key_pem=key,
        authserv_id="lists.example",
        auth_results_header=results,
        timestamp=1795321800,
    )
    return arc_set + results + MESSAGE


def second_hop(message: bytes, key: bytes, chain: str = "pass") -> bytes:
    """A relay that rewrites the subject and adds a footer, then seals with its own arc= result."""
    modified = message.replace(b"Subject: lunch", b"Subject: [team] lunch") + b"-- \r\nteam list\r\n"
    results = build_authentication_results("relay.example", [arc_result(chain)])
    arc_set = seal_message(
        modified,
        domain="relay.example",
        selector="seal",
        private_key_pem=key,
        authserv_id="relay.example",
        auth_results_header=results,
    )
    return arc_set + results + modified


async def test_message_without_arc_fields_is_none_without_lookups(resolver: FakeResolver) -> None:
    result = await verify_arc(MESSAGE, resolver)
    assert (result.result, result.instances, result.oldest_pass) == ("none", 0, None)
    assert resolver.queries == []


@pytest.mark.parametrize(
    "message",
    [
        MESSAGE + b"ARC-Seal: i=1; cv=none; d=lists.example; s=arc; b=AAAA\r\n",
        b"Subject: x\r\n ARC-Seal: i=1; cv=none; d=lists.example; s=arc; b=AAAA\r\n\r\nbody\r\n",
        b"X-ARC-Seal: i=1; cv=none; d=lists.example; s=arc; b=AAAA\r\n" + MESSAGE,
    ],
    ids=["in-body", "in-continuation", "in-other-name"],
)
async def test_arc_names_outside_field_names_are_no_chain(message: bytes, resolver: FakeResolver) -> None:
    result = await verify_arc(message, resolver)
    assert result.result == "none"
    assert resolver.queries == []


@pytest.mark.parametrize(
    "rename",
    [
        lambda m: (
            m.replace(b"ARC-Seal:", b"Arc-Seal:")
            .replace(b"ARC-Message-Signature:", b"aRC-message-signature:")
            .replace(b"ARC-Authentication-Results:", b"Arc-Authentication-Results:")
        ),
        lambda m: b"Received: from lists.example by mx.example.net; Sun, 22 Nov 2026 04:31:00 +0000\r\n" + m,
        lambda m: m.replace(b"\r\n", b"\n"),
    ],
    ids=["name-case", "not-first-field", "bare-lf"],
)
async def test_arc_fields_anywhere_in_the_header_in_any_case_are_checked(
    rename: Callable[[bytes], bytes], rsa_key: bytes, resolver: FakeResolver
) -> None:
    # The quick look for ARC fields must not miss any: each of these chains still verifies.
    result = await verify_arc(rename(first_hop(rsa_key)), resolver)
    assert (result.result, result.instances) == ("pass", 1)
    assert resolver.queries == [("TXT", "arc._domainkey.lists.example")]


async def test_lone_arc_field_on_the_first_line_is_an_invalid_chain(resolver: FakeResolver) -> None:
    # RFC 8617 §5.2: ARC fields without a complete set make the chain fail, whichever line they are on.
    message = b"ARC-Authentication-Results: i=1; lists.example; spf=pass\r\n" + MESSAGE
    assert (await verify_arc(message, resolver)).result == "fail"


async def test_sealed_message_passes_with_one_instance(rsa_key: bytes, resolver: FakeResolver) -> None:
    result = await verify_arc(first_hop(rsa_key), resolver)
    assert result.result == "pass"
    assert (result.instances, result.oldest_pass, result.sealers) == (1, 0, ("lists.example",))


def test_seal_has_cv_none_first_and_carries_the_results(rsa_key: bytes) -> None:
    header = first_hop(rsa_key).split(b"\r\n\r\n")[0]
    assert header.startswith(b"ARC-Seal: i=1; cv=none;")
    assert b"ARC-Message-Signature: i=1;" in header
    assert b"ARC-Authentication-Results: i=1; lists.example;" in header
    assert b"header.d=example.org" in header


async def test_forwarded_modified_and_resealed_message_passes(rsa_key: bytes, resolver: FakeResolver) -> None:
    message = second_hop(first_hop(rsa_key), rsa_key)
    result = await verify_arc(message, resolver)
    assert result.result == "pass"
    assert result.instances == 2
    # The first hop's message signature no longer matches the modified message; the second one does.
    assert result.oldest_pass == 2
    assert result.sealers == ("lists.example", "relay.example")
    assert b"ARC-Seal: i=2; cv=pass;" in message


async def test_change_after_the_last_seal_fails(rsa_key: bytes, resolver: FakeResolver) -> None:
    message = second_hop(first_hop(rsa_key), rsa_key).replace(b"[team] lunch", b"[team] dinner")
    result = await verify_arc(message, resolver)
    assert result.result == "fail"
    assert result.oldest_pass is None


async def test_tampered_earlier_arc_set_fails(rsa_key: bytes, resolver: FakeResolver) -> None:
    message = second_hop(first_hop(rsa_key), rsa_key)
    tampered = message.replace(b"header.d=example.org", b"header.d=evil.example", 1)
    assert tampered != message
    result = await verify_arc(tampered, resolver)
    assert result.result == "fail"


async def test_key_lookup_failure_fails_the_chain(rsa_key: bytes) -> None:
    # RFC 8617 §5.2.1: all failures are permanent, DNS ones included.
    result = await verify_arc(first_hop(rsa_key), FakeResolver(failing={"arc._domainkey.lists.example"}))
    assert result.result == "fail"
    assert "lookup failed" in result.reason


async def test_missing_key_fails_the_chain(rsa_key: bytes) -> None:
    result = await verify_arc(first_hop(rsa_key), FakeResolver(missing={"arc._domainkey.lists.example"}))
    assert result.result == "fail"
    assert "no key record" in result.reason


async def test_more_than_fifty_sets_fail_without_lookups(resolver: FakeResolver) -> None:
    seals = b"".join(
        b"ARC-Seal: i=%d; cv=pass; a=rsa-sha256; d=lists.example; s=arc; b=AAAA\r\n" % i
        for i in range(1, MAX_INSTANCES + 2)
    )
    result = await verify_arc(seals + MESSAGE, resolver)
    assert result.result == "fail"
    assert resolver.queries == []


async def test_flood_of_message_signatures_fails_without_lookups(resolver: FakeResolver) -> None:
    signatures = b"".join(
        b"ARC-Message-Signature: i=1; a=rsa-sha256; d=d%d.example; s=arc; h=from; bh=AA; b=AA\r\n" % n
        for n in range(3 * MAX_INSTANCES + 1)
    )
    result = await verify_arc(signatures + MESSAGE, resolver)
    assert result.result == "fail"
    assert resolver.queries == []


async def test_huge_instance_number_fails(resolver: FakeResolver) -> None:
    seal = b"ARC-Seal: i=" + b"9" * 5000 + b"; cv=none; a=rsa-sha256; d=lists.example; s=arc; b=AAAA\r\n"
    assert (await verify_arc(seal + MESSAGE, resolver)).result == "fail"


async def test_resealing_a_failed_chain_records_cv_fail(rsa_key: bytes, resolver: FakeResolver) -> None:
    message = second_hop(first_hop(rsa_key), rsa_key, chain="fail")
    assert b"ARC-Seal: i=2; cv=fail;" in message
    assert (await verify_arc(message, resolver)).result == "fail"


def test_forged_results_of_our_id_are_not_sealed(rsa_key: bytes) -> None:
    forged = b"Authentication-Results: LISTS.example; dkim=pass header.d=evil.example\r\n" + MESSAGE
    results = build_authentication_results("lists.example", [spf_result("pass", "alice@example.org")])
    arc_set = seal_message(
        forged,
        domain="lists.example",
        selector="arc",
        private_key_pem=rsa_key,
        authserv_id="lists.example",
        auth_results_header=results,
    )
    assert b"evil.example" not in arc_set
    assert b"smtp.mailfrom=alice@example.org" in arc_set


def ed25519_key() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("message", "key", "header", "problem"),
    [
        pytest.param(
            MESSAGE, "ed25519", b"Authentication-Results: lists.example; none\r\n", "RSA", id="ed25519"
        ),
        pytest.param(
            MESSAGE, "garbage", b"Authentication-Results: lists.example; none\r\n", "unreadable", id="key"
        ),
        pytest.param(MESSAGE, "rsa", b"Received: from x\r\n", "Authentication-Results", id="not-results"),
        pytest.param(
            MESSAGE, "rsa", b"Authentication-Results: other.example; none\r\n", "no Auth", id="other-id"
        ),
        pytest.param(
            MESSAGE.replace(b"From: Alice <alice@example.org>\r\n", b""),
            "rsa",
            b"Authentication-Results: lists.example; none\r\n",
            "From",
            id="no-from",
        ),
    ],
)
def test_seal_refuses_what_it_cannot_seal(
    message: bytes, key: str, header: bytes, problem: str, rsa_key: bytes
) -> None:
    keys = {"rsa": rsa_key, "ed25519": ed25519_key(), "garbage": b"not a key"}
    with pytest.raises(ArcSealError, match=problem):
        seal_message(
            message,
            domain="lists.example",
            selector="arc",
            private_key_pem=keys[key],
            authserv_id="lists.example",
            auth_results_header=header,
        )


def test_seal_of_existing_chain_needs_an_arc_result(rsa_key: bytes) -> None:
    results = build_authentication_results("relay.example", [spf_result("pass", "alice@example.org")])
    with pytest.raises(ArcSealError, match="arc= result"):
        seal_message(
            first_hop(rsa_key),
            domain="relay.example",
            selector="seal",
            private_key_pem=rsa_key,
            authserv_id="relay.example",
            auth_results_header=results,
        )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"ARC-Seal: ",
                b"ARC-Message-Signature: ",
                b"ARC-Authentication-Results: ",
                b"i=1; ",
                b"cv=none; ",
                b"d=lists.example; ",
                b"s=arc; ",
                b"b=AAAA; ",
                b"h=from; ",
                b"\r\n",
                b"\r\n ",
                b"From: a@b.example\r\n",
                b"\xff\x00",
                b";",
                b"=",
            ]
        )
        | st.binary(max_size=20),
        max_size=30,
    )
)
def test_arbitrary_header_bytes_give_a_status_and_never_raise(pieces: list[bytes]) -> None:
    result = asyncio.run(verify_arc(b"".join(pieces) + b"\r\n\r\nbody\r\n", FakeResolver()))
    assert result.result in ("none", "pass", "fail")
