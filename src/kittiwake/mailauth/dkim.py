"""DKIM signatures (RFC 6376), with RSA (RFC 8301) and Ed25519 (RFC 8463) keys.

Verifying is dkim_verify's (re-exported here): every signature gets its own result, named as RFC 8601
§2.7.1 names them: a signature that cannot be processed (bad syntax, unacceptable algorithm, expired) is
"neutral", a missing, revoked or unusable key "permerror", a failed lookup "temperror", and a hash or
signature mismatch "fail". Signing with RSA is done here, with OpenSSL through cryptography; Ed25519
signing is dkimpy's.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import time
from collections.abc import Sequence
from typing import Literal

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from kittiwake.mail.address import AddressError, normalize_domain
from kittiwake.mail.headers import parse_header_fields
from kittiwake.mailauth.dkim_verify import (
    MAX_SIGNATURES,
    MIN_RSA_BITS,
    DkimOutcome,
    DkimResult,
    canonical_body,
    crlf_lines,
    relaxed_header,
    select_fields,
    verify_message,
)

__all__ = [
    "DEFAULT_SIGNED_HEADERS",
    "MAX_SIGNATURES",
    "MIN_RSA_BITS",
    "DkimOutcome",
    "DkimResult",
    "DkimSigningError",
    "SigningAlgorithm",
    "public_key_record",
    "sign_message",
    "verify_message",
]

SigningAlgorithm = Literal["rsa-sha256", "ed25519-sha256"]

# Signed once for every occurrence in the message, From once more so that no second From can be added
# without breaking the signature (RFC 6376 §8.15).
DEFAULT_SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
    b"mime-version", b"content-type", b"content-transfer-encoding", b"reply-to",
)  # fmt: skip

_HEADER_END = re.compile(rb"\r?\n\r?\n")


class DkimSigningError(ValueError):
    """The message or key cannot be signed with: no From field, a key of the wrong kind or too small."""


def sign_message(
    message: bytes,
    *,
    domain: str,
    selector: str,
    private_key_pem: bytes,
    algorithm: SigningAlgorithm = "rsa-sha256",
    headers: Sequence[bytes] | None = None,
) -> bytes:
    """The `DKIM-Signature: ...\\r\\n` field to put before `message`'s header, relaxed/relaxed canonicalised.

    `headers` lists the field names to sign (a name twice signs two occurrences, or one and its absence);
    by default those of DEFAULT_SIGNED_HEADERS that the message has, with From oversigned.
    Raises DkimSigningError.
    """
    key = _signing_key(private_key_pem, algorithm)
    include = list(headers) if headers is not None else _default_headers(message)
    if b"from" not in {name.lower() for name in include}:
        raise DkimSigningError("From must be signed")  # RFC 6376 §5.4
    try:
        ascii_domain = normalize_domain(domain)
    except AddressError as error:
        raise DkimSigningError(str(error)) from error
    if algorithm == "rsa-sha256":
        return _sign_rsa(message, ascii_domain, selector, private_key_pem, include)
    try:
        signer = dkim.DKIM(message, signature_algorithm=algorithm.encode())
        field = signer.sign(
            selector.encode("ascii"),
            ascii_domain.encode("ascii"),
            key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
    except (dkim.DKIMException, UnicodeEncodeError) as error:
        raise DkimSigningError(str(error)) from error
    return bytes(field)


def _sign_rsa(
    message: bytes, domain: str, selector: str, private_key_pem: bytes, include: list[bytes]
) -> bytes:
    """rsa-sha256 with relaxed/relaxed canonicalisation, the RSA operation done by OpenSSL (cryptography):
    dkimpy's own pure-Python RSA takes milliseconds per message on the outbound path."""
    match = _HEADER_END.search(message)
    head, body = (message[: match.start() + 2], message[match.end() :]) if match else (message, b"")
    fields = [
        (name.encode(), value.encode("utf-8", "surrogateescape")) for name, value in parse_header_fields(head)
    ]
    digest = hashlib.sha256(canonical_body(crlf_lines(body), relaxed=True)).digest()
    body_hash = base64.b64encode(digest).decode("ascii")
    names = [name.lower() for name, _value in fields]
    signed = [fields[index] for index in select_fields(names, [name.lower() for name in include])]
    tags = (
        f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s={selector};\r\n\tt={int(time.time())}; "
        f"h={':'.join(name.decode('ascii').lower() for name in include)};\r\n\tbh={body_hash};\r\n\tb="
    )
    data = b"".join(relaxed_header(n, v) + b"\r\n" for n, v in signed)
    data += relaxed_header(b"DKIM-Signature", b" " + tags.encode("ascii"))
    key = _rsa_private_key(private_key_pem)
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return b"DKIM-Signature: " + tags.encode("ascii") + base64.b64encode(signature) + b"\r\n"


@functools.lru_cache(maxsize=64)
def _rsa_private_key(private_key_pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)  # _signing_key checked the kind and size first
    return key


def _default_headers(message: bytes) -> list[bytes]:
    match = _HEADER_END.search(message)
    fields = parse_header_fields(message[: match.start()] if match else message)
    present = [name.lower().encode("ascii") for name, _value in fields]
    if b"from" not in present:
        raise DkimSigningError("the message has no From field")
    include = [name for name in present if name in DEFAULT_SIGNED_HEADERS]
    return [*include, b"from"]


@functools.lru_cache(maxsize=64)
def _signing_key(private_key_pem: bytes, algorithm: SigningAlgorithm) -> bytes:
    """The key in the form dkimpy takes: PKCS#1 PEM for RSA, the base64 32-byte seed for Ed25519.

    Cached: loading an RSA key checks it, which costs tens of milliseconds, and a server signs every
    outgoing message with the same few keys."""
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise DkimSigningError(f"unreadable private key: {error}") from error
    if algorithm == "rsa-sha256":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise DkimSigningError("rsa-sha256 needs an RSA key")
        if key.key_size < MIN_RSA_BITS:
            raise DkimSigningError(f"RSA key of {key.key_size} bits; RFC 8301 requires {MIN_RSA_BITS}")
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise DkimSigningError("ed25519-sha256 needs an Ed25519 key")
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(seed)


def public_key_record(private_key_pem: bytes) -> str:
    """The TXT record value that publishes the public half of the key (RFC 6376 §3.6.1, RFC 8463 §4.2)."""
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise DkimSigningError(f"unreadable private key: {error}") from error
    if isinstance(key, rsa.RSAPrivateKey):
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode('ascii')}"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        # RFC 8463 §4.2: p= is the bare 32-byte public key, not wrapped in SubjectPublicKeyInfo.
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"
    raise DkimSigningError("DKIM keys are RSA or Ed25519")
