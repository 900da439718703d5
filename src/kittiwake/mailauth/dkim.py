"""DKIM signatures (RFC 6376), with RSA (RFC 8301) and Ed25519 (RFC 8463) keys.

The cryptography and canonicalisation come from dkimpy. Key records are fetched first through our own
asynchronous Resolver; dkimpy then checks the signatures in a worker thread, answering its lookups from the
records already fetched. Every signature gets its own result, named as RFC 8601 §2.7.1 names them: a
signature that cannot be processed (bad syntax, unacceptable algorithm, expired) is "neutral", a missing,
revoked or unusable key "permerror", a failed lookup "temperror", and a hash or signature mismatch "fail".
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import dkim
import dkim.util
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from kittiwake.mail.address import AddressError, normalize_domain
from kittiwake.mail.headers import parse_header_fields
from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

DkimOutcome = Literal["pass", "fail", "neutral", "temperror", "permerror"]
SigningAlgorithm = Literal["rsa-sha256", "ed25519-sha256"]

# RFC 6376 §8.4: every signature costs a lookup and a hash of the message; a verifier may stop somewhere.
MAX_SIGNATURES = 10
# RFC 8301 §3.2: verifiers must accept 1024 to 4096 bit RSA keys and need accept nothing smaller.
MIN_RSA_BITS = 1024

# Signed once for every occurrence in the message, From once more so that no second From can be added
# without breaking the signature (RFC 6376 §8.15).
DEFAULT_SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
    b"mime-version", b"content-type", b"content-transfer-encoding", b"reply-to",
)  # fmt: skip

_REQUIRED_TAGS = ("v", "a", "b", "bh", "d", "h", "s")  # RFC 6376 §3.5
_KEY_TYPES = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}
# dkimpy's header grammar: a field starts where printable characters run up to a colon.
_FIELD_START = re.compile(rb"([\x21-\x7e]+?):")
_LINE_END = re.compile(rb"\r?\n")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")  # RFC 6376 §3.1
_WHITESPACE = re.compile(r"\s+")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class DkimSigningError(ValueError):
    """The message or key cannot be signed with: no From field, a key of the wrong kind or too small."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimResult:
    """The verdict on one DKIM-Signature field."""

    domain: str  # d=
    selector: str  # s=
    identity: str | None  # i=
    algorithm: str  # a=
    result: DkimOutcome
    reason: str
    # RFC 6376 §8.2: with l= the signature covers only the first bytes of the body; whatever follows them
    # may have been added on the way, so a pass does not vouch for the whole message.
    partial_body: bool
    signature_prefix: str  # the start of b=, to tell signatures of one domain apart (RFC 6008)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Signature:
    index: int  # position among the DKIM-Signature fields, topmost 0, as dkimpy counts them
    tags: dict[str, str]
    key_name: str | None  # "<s>._domainkey.<d>" lower case, as dkimpy asks for it; None if s= or d= is bad
    query_name: str  # the same name with the domain in A-labels, for the resolver


@dataclass(frozen=True, slots=True, kw_only=True)
class _KeyLookup:
    records: tuple[bytes, ...] = ()
    error: DkimOutcome | None = None
    reason: str = ""


async def verify_message(message: bytes, resolver: Resolver) -> list[DkimResult]:
    """Check each DKIM-Signature field of `message`, topmost first, up to MAX_SIGNATURES of them.

    A message without signatures gives an empty list (RFC 8601 "none" is the caller's to report).
    """
    signatures = _find_signatures(message)[:MAX_SIGNATURES]
    queries = {s.key_name: s.query_name for s in signatures if s.key_name is not None}
    names = sorted(queries)
    lookups = await asyncio.gather(*(_fetch_key(resolver, queries[name]) for name in names))
    keys = dict(zip(names, lookups, strict=True))
    return await asyncio.to_thread(_verify_all, message, signatures, keys)


def _find_signatures(message: bytes) -> list[_Signature]:
    signatures: list[_Signature] = []
    for index, value in enumerate(_signature_values(message)):
        tags = _parse_tags(value)
        key_name, query_name = _key_names(tags.get("s"), tags.get("d"))
        signatures.append(_Signature(index=index, tags=tags, key_name=key_name, query_name=query_name))
    return signatures


def _signature_values(message: bytes) -> list[bytes]:
    """The DKIM-Signature values, unfolded, found by dkimpy's rules so that the indexes agree."""
    end = _HEADER_END.search(message)
    fields: list[list[bytes]] = []
    current: list[bytes] | None = None
    for line in _LINE_END.split(message[: end.start()] if end else message):
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        match = _FIELD_START.match(line)
        current = None
        if match is not None and match[1].lower() == b"dkim-signature":
            current = [line[match.end() :]]
            fields.append(current)
    return [b"".join(parts) for parts in fields]


def _parse_tags(value: bytes) -> dict[str, str]:
    """An RFC 6376 §3.2 tag-list, read leniently: the first of duplicate tags wins, junk is skipped."""
    tags: dict[str, str] = {}
    for spec in value.decode("utf-8", "replace").split(";"):
        name, equals, tag_value = spec.partition("=")
        name = name.strip()
        if equals and name:
            tags.setdefault(name, tag_value.strip())
    return tags


def _key_names(selector: str | None, domain: str | None) -> tuple[str | None, str]:
    if not selector or not domain or not _SELECTOR.fullmatch(selector):
        return None, ""
    try:
        ascii_domain = normalize_domain(domain)
    except AddressError:
        return None, ""
    # RFC 6376 §3.6.2.1: the key lives at <selector>._domainkey.<domain>.
    return f"{selector}._domainkey.{domain}".lower(), f"{selector}._domainkey.{ascii_domain}"


async def _fetch_key(resolver: Resolver, name: str) -> _KeyLookup:
    try:
        records = await resolver.txt(name)
    except NoSuchDomain:
        # RFC 6376 §6.1.2: no key record is a permanent failure.
        return _KeyLookup(error="permerror", reason=f"no key record at {name}")
    except DnsError as error:
        # RFC 6376 §6.1.2: a lookup that could not be completed is a temporary failure.
        return _KeyLookup(error="temperror", reason=f"key lookup failed: {error}")
    if not records:
        return _KeyLookup(error="permerror", reason=f"no key record at {name}")
    return _KeyLookup(records=tuple(records))


class _PrefetchedKeys:
    """dkimpy's dnsfunc, answering from records fetched beforehand; unknown names get no record."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        self._answers = answers

    def __call__(self, name: bytes, timeout: float = 5) -> bytes:
        key = name.decode("utf-8", "replace").rstrip(".").lower()
        return self._answers.get(key, b"")


def _verify_all(
    message: bytes, signatures: list[_Signature], keys: dict[str, _KeyLookup]
) -> list[DkimResult]:
    verifier: dkim.DKIM | None
    try:
        verifier = dkim.DKIM(message, minkey=MIN_RSA_BITS)
    except Exception:  # dkimpy's header parser raises more than its own errors on malformed input
        verifier = None
    return [_verify_one(verifier, signature, keys) for signature in signatures]


def _verify_one(verifier: dkim.DKIM | None, signature: _Signature, keys: dict[str, _KeyLookup]) -> DkimResult:
    tags = signature.tags

    def outcome(result: DkimOutcome, reason: str) -> DkimResult:
        return DkimResult(
            domain=tags.get("d", ""),
            selector=tags.get("s", ""),
            identity=tags.get("i"),
            algorithm=tags.get("a", ""),
            result=result,
            reason=reason,
            partial_body="l" in tags,
            signature_prefix=_WHITESPACE.sub("", tags.get("b", ""))[:8],
        )

    problem = _signature_problem(tags) or _dkimpy_problem(verifier, signature.index)
    if problem is not None or signature.key_name is None:
        return outcome("neutral", problem or "unusable s= or d= tag")
    lookup = keys[signature.key_name]
    if lookup.error is not None:
        return outcome(lookup.error, lookup.reason)
    record, reason = _choose_key(lookup.records, tags["a"], signature.key_name)
    if record is None or verifier is None:
        return outcome("permerror", reason if record is None else "message header cannot be parsed")
    dnsfunc = _PrefetchedKeys({signature.key_name: record})
    try:
        verified = verifier.verify(idx=signature.index, dnsfunc=dnsfunc)
    except dkim.ValidationError as error:  # the fields were validated before: this is the body hash
        return outcome("fail", str(error))
    except dkim.KeyFormatError as error:  # a key smaller than MIN_RSA_BITS, for one
        return outcome("permerror", str(error))
    except Exception as error:  # dkimpy may raise anything on hostile input; it must not stop the others
        return outcome("neutral", f"cannot be processed: {error}")
    if not verified:
        return outcome("fail", "signature did not verify")
    return outcome("pass", "signature verified")


def _signature_problem(tags: dict[str, str]) -> str | None:
    """Why the signature cannot be processed at all (RFC 6376 §6.1.1), or None."""
    missing = [tag for tag in _REQUIRED_TAGS if not tags.get(tag)]
    if missing:
        return f"missing tags: {', '.join(missing)}"
    if tags["v"] != "1":
        return f"unknown version v={tags['v']}"
    if tags["a"] not in _KEY_TYPES:
        # RFC 8301 §3.1: rsa-sha1 signatures must not be considered valid.
        return f"unacceptable algorithm a={tags['a']}"
    signed = {name.strip().lower() for name in tags["h"].split(":")}
    if "from" not in signed:
        return "From is not signed"  # RFC 6376 §6.1.1
    expires = tags.get("x", "")
    if expires.isdigit() and int(expires) < time.time():
        return "signature expired"  # RFC 6376 §3.5 x=
    return None


def _dkimpy_problem(verifier: dkim.DKIM | None, index: int) -> str | None:
    """dkimpy's own field checks (base64, i= within d=, l=, q=, t=), run before it hashes anything."""
    if verifier is None:
        return None
    values = [value for name, value in verifier.headers if name.lower() == b"dkim-signature"]
    if index >= len(values):
        return "signature field not found"
    try:
        dkim.validate_signature_fields(dkim.util.parse_tag_value(values[index]))
    except (dkim.DKIMException, dkim.util.InvalidTagValueList) as error:
        return f"bad signature field: {error}"
    return None


def _choose_key(records: Sequence[bytes], algorithm: str, name: str) -> tuple[bytes | None, str]:
    """The first key record usable with `algorithm` (RFC 6376 §3.6.1, §6.1.2), else why none is."""
    reason = f"no DKIM key record at {name}"
    for record in records:
        key = _parse_tags(record)
        if "p" not in key:
            continue
        if not _WHITESPACE.sub("", key["p"]):
            return None, "key revoked"  # RFC 6376 §3.6.1: an empty p= revokes the key
        services = {item.strip() for item in key.get("s", "*").split(":")}
        hashes = {item.strip() for item in key.get("h", "sha256").split(":")}
        if key.get("k", "rsa") != _KEY_TYPES[algorithm] or "sha256" not in hashes:
            reason = "inappropriate key algorithm"
            continue
        if not services & {"*", "email"}:
            reason = "key not for email"
            continue
        try:
            dkim.evaluate_pk(name.encode(), record)
        except Exception as error:  # dkimpy's key parser raises several unrelated types
            reason = f"key syntax error: {error}"
            continue
        return record, ""
    return None, reason


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


_WSP_RUN = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")


def _relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4: runs of WSP become one SP, WSP at line ends and empty lines at the end go."""
    body = _WSP_RUN.sub(b" ", body).replace(b" \r\n", b"\r\n").rstrip(b" \r\n")
    return body + b"\r\n" if body else b""


def _relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2: lower-case name, unfolded value with WSP runs as one SP, no WSP around the colon."""
    value = _WSP_RUN.sub(b" ", _FOLD.sub(b"", value)).strip(b" \r\n")
    return name.strip().lower() + b":" + value


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
    body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest()).decode("ascii")
    signed = _select_fields(fields, include)
    tags = (
        f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s={selector};\r\n\tt={int(time.time())}; "
        f"h={':'.join(name.decode('ascii').lower() for name in include)};\r\n\tbh={body_hash};\r\n\tb="
    )
    data = b"".join(_relaxed_header(n, v) + b"\r\n" for n, v in signed)
    data += _relaxed_header(b"DKIM-Signature", b" " + tags.encode("ascii"))
    key = _rsa_private_key(private_key_pem)
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return b"DKIM-Signature: " + tags.encode("ascii") + base64.b64encode(signature) + b"\r\n"


def _select_fields(fields: list[tuple[bytes, bytes]], include: list[bytes]) -> list[tuple[bytes, bytes]]:
    """RFC 6376 §5.4.2: each name in h= takes the last unused field of that name, bottom up; a name with
    none left (oversigning) adds nothing, so nobody can add such a field later."""
    used: set[int] = set()
    chosen = []
    for name in include:
        for index in range(len(fields) - 1, -1, -1):
            if index not in used and fields[index][0].lower() == name.lower():
                used.add(index)
                chosen.append(fields[index])
                break
    return chosen


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
