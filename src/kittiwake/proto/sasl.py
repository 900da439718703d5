"""Server side of SASL mechanisms (RFC 4422) as pure step objects, shared by SMTP AUTH and IMAP AUTHENTICATE.

A mechanism object handles one exchange: ``start(initial_response)`` and then ``step(response)`` for each
client answer. Each returns either a ``Challenge`` to send to the client or the ``Credentials`` to verify.
Malformed client data raises ``SaslError``; the protocol layer answers it (SMTP 501, IMAP BAD) and drops
the mechanism. Verifying the password is the caller's business.

Offered here: PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login). SCRAM is not offered: it needs
salted keys stored per account, which password hashes do not provide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MAX_FIELD_LENGTH = 255  # RFC 4616 §2: authzid, authcid and passwd are each at most 255 octets


class SaslError(Exception):
    """The client's SASL data is malformed or out of place."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    data: bytes  # raw bytes; the protocol layer base64-encodes them


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    authzid: str  # identity to act as; "" when the client named none
    username: str  # authentication identity (authcid)
    password: str


Outcome = Challenge | Credentials


class Mechanism(Protocol):
    name: str

    def start(self, initial_response: bytes | None) -> Outcome: ...

    def step(self, response: bytes) -> Outcome: ...


def _decode(field: bytes) -> str:
    if len(field) > MAX_FIELD_LENGTH:
        raise SaslError("field too long")
    try:
        return field.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError("field is not UTF-8") from None


class PlainMechanism:
    """RFC 4616: one message ``[authzid] NUL authcid NUL passwd``.

    ``allow_proxy`` lets the authzid name someone other than the authcid; otherwise it must be empty or
    equal to the authcid (RFC 4616 §2 leaves authorization policy to the server).
    """

    name = "PLAIN"

    def __init__(self, *, allow_proxy: bool = False) -> None:
        self._allow_proxy = allow_proxy
        self._done = False

    def start(self, initial_response: bytes | None) -> Outcome:
        if initial_response is None:
            return Challenge(data=b"")  # RFC 4616 §2: the server sends an empty challenge
        return self.step(initial_response)

    def step(self, response: bytes) -> Outcome:
        if self._done:
            raise SaslError("PLAIN takes a single message")
        self._done = True
        fields = response.split(b"\x00")
        if len(fields) != 3:
            raise SaslError("PLAIN message must have three NUL-separated fields")
        authzid, username, password = (_decode(field) for field in fields)
        if not username or not password:
            raise SaslError("empty username or password")
        if authzid and authzid != username and not self._allow_proxy:
            raise SaslError("authorization identity differs from authentication identity")
        return Credentials(authzid=authzid, username=username, password=password)


class LoginMechanism:
    """LOGIN: the server asks ``Username:`` then ``Password:``; an initial response is the username."""

    name = "LOGIN"
    USERNAME_CHALLENGE = b"Username:"  # base64 VXNlcm5hbWU6
    PASSWORD_CHALLENGE = b"Password:"  # base64 UGFzc3dvcmQ6

    def __init__(self) -> None:
        self._username: str | None = None
        self._done = False

    def start(self, initial_response: bytes | None) -> Outcome:
        if initial_response is None:
            return Challenge(data=self.USERNAME_CHALLENGE)
        return self.step(initial_response)

    def step(self, response: bytes) -> Outcome:
        if self._done:
            raise SaslError("LOGIN exchange already finished")
        if self._username is None:
            self._username = _decode(response)
            if not self._username:
                raise SaslError("empty username")
            return Challenge(data=self.PASSWORD_CHALLENGE)
        self._done = True
        password = _decode(response)
        if not password:
            raise SaslError("empty password")
        return Credentials(authzid="", username=self._username, password=password)


MECHANISM_NAMES = ("PLAIN", "LOGIN")


def create_mechanism(name: str, *, allow_proxy: bool = False) -> Mechanism | None:
    """A fresh server-side exchange for ``name`` (case-insensitive), or None when not offered."""
    upper = name.upper()
    if upper == "PLAIN":
        return PlainMechanism(allow_proxy=allow_proxy)
    if upper == "LOGIN":
        return LoginMechanism()
    return None
