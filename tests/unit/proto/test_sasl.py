"""SASL server mechanisms: PLAIN (RFC 4616) and LOGIN."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.proto.sasl import (
    Challenge,
    Credentials,
    LoginMechanism,
    PlainMechanism,
    SaslError,
    create_mechanism,
)


@pytest.mark.parametrize(
    ("message", "credentials"),
    [
        (
            b"\x00tim\x00tanstaaftanstaaf",
            Credentials(authzid="", username="tim", password="tanstaaftanstaaf"),
        ),
        (b"tim\x00tim\x00secret", Credentials(authzid="tim", username="tim", password="secret")),
        (
            "\x00jos\u00e9\x00p\u00e4ss".encode(),
            Credentials(authzid="", username="jos\u00e9", password="p\u00e4ss"),
        ),
    ],
)
def test_plain_initial_response_gives_credentials(message: bytes, credentials: Credentials) -> None:
    assert PlainMechanism().start(message) == credentials


def test_plain_without_initial_response_sends_empty_challenge() -> None:
    mechanism = PlainMechanism()
    assert mechanism.start(None) == Challenge(data=b"")
    assert mechanism.step(b"\x00u\x00p") == Credentials(authzid="", username="u", password="p")


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x00user",
        b"\x00user\x00pass\x00extra",
        b"\x00\x00pass",
        b"\x00user\x00",
        b"other\x00user\x00pass",
        b"\x00\xff\x00pass",
        b"\x00" + b"u" * 256 + b"\x00pass",
    ],
)
def test_plain_malformed_or_foreign_authzid_raises(message: bytes) -> None:
    with pytest.raises(SaslError):
        PlainMechanism().start(message)


def test_plain_proxy_authzid_allowed_when_caller_permits() -> None:
    result = PlainMechanism(allow_proxy=True).start(b"other\x00admin\x00pw")
    assert result == Credentials(authzid="other", username="admin", password="pw")


def test_plain_refuses_a_second_message() -> None:
    mechanism = PlainMechanism()
    mechanism.start(b"\x00u\x00p")
    with pytest.raises(SaslError):
        mechanism.step(b"\x00u\x00p")


def test_login_asks_username_then_password() -> None:
    mechanism = LoginMechanism()
    assert mechanism.start(None) == Challenge(data=b"Username:")
    assert mechanism.step(b"tim") == Challenge(data=b"Password:")
    assert mechanism.step(b"secret") == Credentials(authzid="", username="tim", password="secret")
    with pytest.raises(SaslError):
        mechanism.step(b"again")


def test_login_initial_response_is_the_username() -> None:
    mechanism = LoginMechanism()
    assert mechanism.start(b"tim") == Challenge(data=b"Password:")
    assert mechanism.step(b"pw") == Credentials(authzid="", username="tim", password="pw")


@pytest.mark.parametrize("responses", [[b""], [b"tim", b""], [b"\xff"]])
def test_login_empty_or_invalid_fields_raise(responses: list[bytes]) -> None:
    mechanism = LoginMechanism()
    mechanism.start(None)
    with pytest.raises(SaslError):
        for response in responses:
            mechanism.step(response)


@pytest.mark.parametrize(("name", "kind"), [("plain", PlainMechanism), ("LOGIN", LoginMechanism)])
def test_create_mechanism_by_name(name: str, kind: type) -> None:
    assert isinstance(create_mechanism(name), kind)


def test_create_mechanism_unknown_is_none() -> None:
    assert create_mechanism("SCRAM-SHA-256") is None


@given(first=st.binary(max_size=600), second=st.binary(max_size=600))
def test_arbitrary_responses_raise_only_sasl_error(first: bytes, second: bytes) -> None:
    for mechanism in (PlainMechanism(), LoginMechanism()):
        try:
            result = mechanism.start(first)
            if isinstance(result, Challenge):
                mechanism.step(second)
        except SaslError:
            pass
