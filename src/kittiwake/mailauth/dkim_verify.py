"""Verifying DKIM signatures (RFC 6376 §6), with RSA (RFC 8301) and Ed25519 (RFC 8463) keys.

Key records are fetched through our asynchronous Resolver; canonicalisation works on whole buffers and the
public-key operation is OpenSSL's (through cryptography). Every signature gets its own result, named as
RFC 8601 §2.7.1 names them: a signature that cannot be processed (bad syntax, unacceptable algorithm,
expired) is "neutral", a missing, revoked or unusable key "permerror", a failed lookup "temperror", and a
hash or signature mismatch "fail".

The message is read as dkimpy reads it (a bare LF ends a line too; a header line that is neither a field
nor a continuation makes the header unreadable), so that these verdicts agree with the ARC checks, which
dkimpy still makes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from kittiwake.mail.address import AddressError, normalize_domain
from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

DkimOutcome = Literal["pass", "fail", "neutral", "temperror", "permerror"]
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# RFC 6376 §8.4: every signature costs a lookup and a hash of the message; a verifier may stop somewhere.
MAX_SIGNATURES = 10
# RFC 8301 §3.2: verifiers must accept 1024 to 4096 bit RSA keys and need accept nothing smaller.
MIN_RSA_BITS = 1024
# Hashing a body this large takes milliseconds; a worker thread keeps the event loop answering meanwhile.
# Below it, the hop to the thread costs more than the work.
THREAD_BODY_SIZE = 256 * 1024
# Senders' clocks run fast; a t= this far ahead is still believed (dkimpy allows the same).
CLOCK_SLACK = 10 * 3600

_REQUIRED_TAGS = ("v", "a", "b", "bh", "d", "h", "s")  # RFC 6376 §3.5
_KEY_TYPES = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}
_CANONICALISATIONS = {  # RFC 6376 §3.5 c=: header/body, the body simple when not given
    **{header: (header == "relaxed", False) for header in ("simple", "relaxed")},
    **{
        f"{header}/{body}": (header == "relaxed", body == "relaxed")
        for header in ("simple", "relaxed")
        for body in ("simple", "relaxed")
    },
}
# dkimpy's header grammar: a field starts where printable characters run up to a colon.
_FIELD_START = re.compile(rb"([\x21-\x7e]+?):")
_LINE_END = re.compile(rb"\r?\n")
# A field in a header whose lines all end in CRLF: its name, then its value from the colon on, the rest of
# its line and every continuation line (RFC 5322 §2.2, §2.2.3), final CRLF included.
_CRLF_FIELD = re.compile(rb"([\x21-\x7e]+?):([^\n]*\n(?:[ \t][^\n]*\n)*)")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")  # RFC 6376 §3.1
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # RFC 6376 §3.2 tag-name
_SPACE = " \t\r\n\x0b\x0c"  # ASCII whitespace, what dkimpy strips from tags
_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_DIGITS = re.compile(r"[0-9]+")
_LENGTH = re.compile(r"[0-9]{1,76}")  # RFC 6376 §3.5 l=: at most 76 digits
_DOMAIN_SPECIALS = re.compile(r"[()<>\[\]:;@\\,]")
_H_SEPARATOR = re.compile(r"\s*:\s*", re.ASCII)
# RFC 6376 §3.7: the b= value, whitespace inside it included, as dkimpy finds it (its pattern spelled
# without nested optional groups, which made it backtrack at every character).
_B_TAG = re.compile(rb"([;\s]b\s*=)(?:[\sA-Za-z0-9+/=]*[A-Za-z0-9+/=])?(?:\r?\n\Z)?")
# Runs of WSP that relaxed canonicalisation changes: a single SP stays as it is, so it need not match.
_WSP_TO_COMPRESS = re.compile(rb"\t[ \t]*| [ \t]+")
_REVERSED_CRLFS = re.compile(rb"(?:\n\r)*")
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


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


# Canonicalisation, shared with the signer.


def crlf_lines(data: bytes) -> bytes:
    """Every line end as CRLF: a bare LF ends a line too, as it does once the message is on the wire."""
    if data.count(b"\n") == data.count(b"\r\n"):
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def canonical_body(body: bytes, relaxed: bool) -> bytes:
    """RFC 6376 §3.4.3 (simple) or §3.4.4 (relaxed) canonical form of a body whose lines end in CRLF."""
    if relaxed:
        if b"\t" in body or b"  " in body:
            body = _WSP_TO_COMPRESS.sub(b" ", body)
        body = body.replace(b" \r\n", b"\r\n")
    body = _one_final_crlf(body)
    # §3.4.4: a relaxed body that is only empty lines is empty; a simple one keeps one CRLF (§3.4.3).
    return b"" if relaxed and body == b"\r\n" else body


def _one_final_crlf(body: bytes) -> bytes:
    """RFC 6376 §3.4.3: empty lines at the end are ignored, and a body not ending in CRLF gets one."""
    if not body.endswith(b"\r\n"):
        return body + b"\r\n"
    if not body.endswith(b"\r\n\r\n"):
        return body
    # Only the CRLF pairs count: a CR before them is content, not a line end.
    tail = body[len(body.rstrip(b"\r\n")) :]
    match = _REVERSED_CRLFS.match(tail[::-1])
    pairs = len(match[0]) // 2 if match else 0
    return body[: len(body) - 2 * (pairs - 1)]


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2: lower-case name, unfolded value with WSP runs as one SP, no WSP around the colon.

    Without the final CRLF."""
    if b"\n" in value:
        value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_TO_COMPRESS.sub(b" ", value)
    return name.strip().lower() + b":" + value.strip()


def select_fields(names: Sequence[bytes], wanted: Iterable[bytes]) -> list[int]:
    """RFC 6376 §5.4.2: the index of the field each wanted name signs, all lower case. Each takes the last
    unused field of that name, bottom up; a name with none left (oversigning) adds nothing, so nobody can
    add such a field later."""
    positions: dict[bytes, list[int]] = {}
    for index, name in enumerate(names):
        positions.setdefault(name, []).append(index)
    chosen = []
    for name in wanted:
        remaining = positions.get(name)
        if remaining:
            chosen.append(remaining.pop())
    return chosen


class _Message:
    """A message split into header fields and body, with its canonical forms computed once each."""

    def __init__(self, message: bytes) -> None:
        header, self._body_start = _split(message)
        self.fields, self.readable = _parse_fields(header)
        self.names = [name.lower() for name, _value in self.fields]
        self._message = message
        self._bodies: dict[bool, bytes] = {}
        self._digests: dict[tuple[bool, int | None], bytes | None] = {}

    @property
    def body_size(self) -> int:
        return len(self._message) - self._body_start

    def body_hash(self, relaxed: bool, length: int | None) -> bytes | None:
        """SHA-256 of the canonical body, or of its first `length` octets (RFC 6376 §3.5 l=); None when
        the body is shorter than that, which l= must never claim."""
        key = (relaxed, length)
        if key not in self._digests:
            body = self._canonical_body(relaxed)
            fits = length is None or length <= len(body)
            self._digests[key] = hashlib.sha256(memoryview(body)[:length]).digest() if fits else None
        return self._digests[key]

    def _canonical_body(self, relaxed: bool) -> bytes:
        if relaxed not in self._bodies:
            self._bodies[relaxed] = canonical_body(crlf_lines(self._message[self._body_start :]), relaxed)
        return self._bodies[relaxed]

    def signed_data(self, signature: int, signed: Sequence[bytes], relaxed: bool) -> bytes:
        """RFC 6376 §3.7: the fields h= names, then the DKIM-Signature field with an empty b= and without
        its final CRLF."""
        chosen = select_fields(self.names, signed)
        fields = self.fields
        name, value = fields[signature]
        value = _B_TAG.sub(_tag_name, value)
        if not relaxed:
            # RFC 6376 §3.4.1: every field exactly as it came.
            parts = [fields[index][0] + b":" + fields[index][1] for index in chosen]
            parts.append(name + b":" + value.rstrip())
            return b"".join(parts)
        if not value.endswith(b"\r\n"):
            value += b"\r\n"  # _B_TAG takes the line end with a final b=; stripping drops it anyway
        chosen.append(signature)
        values = _relaxed_values([*(fields[index][1] for index in chosen[:-1]), value])
        return b"\r\n".join(
            [self.names[index] + b":" + canonical for index, canonical in zip(chosen, values, strict=True)]
        )


def _tag_name(match: re.Match[bytes]) -> bytes:
    """What _B_TAG's match leaves: "b=" without its value (a function is quicker here than a template)."""
    return match[1]


def _relaxed_values(values: list[bytes]) -> list[bytes]:
    """RFC 6376 §3.4.2 for field values, all at once: each value unfolded, its WSP runs made one SP and
    stripped at both ends, as relaxed_header makes it. Each value ends in CRLF, as _parse_fields gives
    them, and every CRLF in it but the last starts a continuation line.

    Each value is preceded by a colon, so that its final CRLF is followed by one (or ends the data) and
    is neither unfolded nor compressed: only the line ends that separate values remain."""
    joined = b":" + b":".join(values)
    joined = joined.replace(b"\r\n ", b" ").replace(b"\r\n\t", b"\t")
    if b"\t" in joined or b"  " in joined:
        joined = _WSP_TO_COMPRESS.sub(b" ", joined)
    values = joined.split(b"\r\n")
    values.pop()  # after the last CRLF
    return [value[1:].strip() for value in values]


def _split(message: bytes) -> tuple[bytes, int]:
    """The header block and where the body starts: after the first empty line (RFC 5322 §2.1)."""
    for blank in (b"\n", b"\r\n"):
        if message.startswith(blank):
            return b"", len(blank)
    match = _BLANK_LINE.search(message)
    if match is None:
        return message, len(message)
    return message[: match.start() + 1], match.end()


def _parse_fields(header: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
    """The (name, value) fields, each value line ending in CRLF, and whether every line could be read."""
    # Nearly every header ends each line in CRLF and has only fields and continuation lines: one regex
    # match per field then gives name and value as they stand. Anything else is read line by line.
    if header.endswith(b"\n") and header.count(b"\n") == header.count(b"\r\n"):
        fields = []
        match = _CRLF_FIELD.match
        position, end = 0, len(header)
        while position < end:
            found = match(header, position)
            if found is None:
                break
            fields.append((found[1], found[2]))
            position = found.end()
        else:
            return fields, True
    return _parse_lines(header)


def _parse_lines(header: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
    lines = _LINE_END.split(header)
    if not lines[-1]:
        lines.pop()
    fields: list[list[bytes]] = []
    current: list[bytes] | None = None
    readable = True
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if current is None:
                readable = False
            else:
                current.append(line)
            continue
        match = _FIELD_START.match(line)
        if match is not None:
            current = [match[1], line[match.end() :]]
            fields.append(current)
        elif not line.startswith(b"From "):  # an mbox separator is skipped, as dkimpy skips it
            readable = False
            current = None
    return [(parts[0], b"\r\n".join(parts[1:]) + b"\r\n") for parts in fields], readable


# The signature field.


@dataclass(slots=True, kw_only=True)
class _Parsed:
    """What verifying one signature needs from its tags, validated."""

    algorithm: str
    relaxed_header: bool
    relaxed_body: bool
    length: int | None
    body_hash: bytes
    signature: bytes
    signed: tuple[bytes, ...]  # h=, lower case
    domain: str  # d=, lower case
    auid_domain: str  # the domain of i=, lower case; d= without i=
    key_name: str  # "<s>._domainkey.<d>" lower case
    query_name: str  # the same name with the domain in A-labels, for the resolver


@dataclass(slots=True, kw_only=True)
class _Signature:
    field: int  # its index among the header fields
    tags: dict[str, str]  # read leniently, for the report
    parsed: _Parsed | str  # or why it cannot be processed


def _find_signatures(message: _Message) -> list[_Signature]:
    indexes = [index for index, name in enumerate(message.names) if name == b"dkim-signature"]
    signatures = []
    for index in indexes[:MAX_SIGNATURES]:
        tags, error = _tag_list(message.fields[index][1])
        signatures.append(_Signature(field=index, tags=tags, parsed=_parse_signature(tags, error)))
    return signatures


def _tag_list(data: bytes) -> tuple[dict[str, str], str | None]:
    """An RFC 6376 §3.2 tag-list: the tags, read leniently (the first of duplicates wins, a malformed
    tag-spec is skipped), and why the list is invalid when read strictly, or None. A tag-spec without a
    name and "=", or a name given twice, makes the whole list invalid."""
    specs = data.decode("utf-8", "replace").strip(_SPACE).split(";")
    if not specs[-1]:
        specs.pop()  # a final ";" is allowed
    tags: dict[str, str] = {}
    error = None
    for spec in specs:
        name, equals, value = spec.partition("=")
        name = name.strip(_SPACE)
        if not equals or not _TAG_NAME.fullmatch(name):
            error = error or f"malformed tag {spec[:40]!r}"
            if not equals or not name:
                continue
        elif name in tags:
            error = error or f"duplicate tag {name}="
        tags.setdefault(name, value.strip(_SPACE))
    return tags, error


def _parse_signature(tags: dict[str, str], error: str | None) -> _Parsed | str:
    """The validated signature (RFC 6376 §6.1.1), or why it cannot be processed."""
    problem = _signature_problem(tags)
    if problem is not None:
        return problem
    problem = error or _tag_problem(tags)
    if problem is not None:
        return f"bad signature field: {problem}"
    body_hash, signature = _base64(tags["bh"]), _base64(tags["b"])
    if body_hash is None or signature is None:
        return "bad signature field: b= or bh= is not base64"
    key_name, query_name = _key_names(tags["s"], tags["d"])
    if key_name is None:
        return "unusable s= or d= tag"
    return _parsed(tags, body_hash, signature, key_name, query_name)


def _parsed(
    tags: dict[str, str], body_hash: bytes, signature: bytes, key_name: str, query_name: str
) -> _Parsed:
    relaxed_header, relaxed_body = _CANONICALISATIONS[tags.get("c", "simple/simple")]
    domain = tags["d"].lower()
    return _Parsed(
        algorithm=tags["a"],
        relaxed_header=relaxed_header,
        relaxed_body=relaxed_body,
        length=int(tags["l"]) if "l" in tags else None,
        body_hash=body_hash,
        signature=signature,
        signed=_signed_names(tags["h"]),
        domain=domain,
        auid_domain=_auid_domain(tags.get("i", "@" + domain)),
        key_name=key_name,
        query_name=query_name,
    )


@functools.lru_cache(maxsize=256)
def _signed_names(h: str) -> tuple[bytes, ...]:
    """The field names of h= (RFC 6376 §3.5), lower case, in order. Cached: a signer's h= rarely changes."""
    signed = tuple(name.encode().lower() for name in _H_SEPARATOR.split(h))
    if b"from" in signed:
        # RFC 5322 §3.6 allows one From. One more "from" makes a second From field break the signature even
        # when the signer did not oversign it, since it may be the one the reader sees (RFC 6376 §8.15);
        # dkimpy, and so the ARC checks, do the same.
        signed += (b"from",)
    return signed


@functools.lru_cache(maxsize=256)
def _signs_from(h: str) -> bool:
    """RFC 6376 §6.1.1: whether h= names From, which a signature must sign."""
    return "from" in {name.strip().lower() for name in h.split(":")}


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
    if not _signs_from(tags["h"]):
        return "From is not signed"  # RFC 6376 §6.1.1
    expires = tags.get("x", "")
    if _DIGITS.fullmatch(expires) and _timestamp(expires) < time.time():
        return "signature expired"  # RFC 6376 §3.5 x=
    return None


def _tag_problem(tags: dict[str, str]) -> str | None:
    """What is wrong with the tag values beyond _signature_problem's checks (RFC 6376 §3.5), or None."""
    if _DOMAIN_SPECIALS.search(tags["d"]):
        return f"d= is not a domain: {tags['d']}"
    if "i" in tags and not _within(_auid_domain(tags["i"]), tags["d"].lower()):
        return f"i= is not within d=: i={tags['i']} d={tags['d']}"
    if "l" in tags and not _LENGTH.fullmatch(tags["l"]):
        return f"l= is not a decimal integer: {tags['l']}"
    if tags.get("q", "dns/txt") != "dns/txt":
        return f"q= is not dns/txt: {tags['q']}"
    if tags.get("c", "simple/simple") not in _CANONICALISATIONS:
        return f"unknown canonicalisation c={tags['c']}"
    return _time_problem(tags)


def _time_problem(tags: dict[str, str]) -> str | None:
    times: dict[str, float] = {}
    for name in ("t", "x"):
        if name in tags:
            if not _DIGITS.fullmatch(tags[name]):
                return f"{name}= is not a decimal integer: {tags[name]}"
            times[name] = _timestamp(tags[name])
    signed, expires = times.get("t"), times.get("x")
    if signed is not None and signed > time.time() + CLOCK_SLACK:
        return f"t= is in the future: {tags['t']}"
    if signed is not None and expires is not None and expires < signed:
        return "x= is earlier than t="  # RFC 6376 §3.5 x=
    return None


def _timestamp(digits: str) -> float:
    # RFC 6376 §3.5 t=: a value longer than 12 digits may be taken as infinite; int() of thousands of digits
    # would raise, and takes time.
    return math.inf if len(digits) > 12 else int(digits)


def _base64(value: str) -> bytes | None:
    """RFC 6376 §3.5 b=, bh=, and §3.6.1 p=: base64, whitespace in it ignored; None if it is not."""
    data = value.encode().translate(None, _SPACE.encode())
    if not _BASE64.fullmatch(data) or len(data) % 4:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        return None


def _auid_domain(identity: str) -> str:
    """The domain of an i= value; empty if it has no "@", which the syntax of RFC 6376 §3.5 requires."""
    _local, at, domain = identity.rpartition("@")
    return domain.lower() if at else ""


def _within(domain: str, parent: str) -> bool:
    return bool(domain) and (domain == parent or domain.endswith("." + parent))


@functools.lru_cache(maxsize=256)
def _key_names(selector: str, domain: str) -> tuple[str | None, str]:
    """The key record's name, lower case, and the same name for the resolver, or (None, "") when s= or d=
    cannot name one. Cached: a few selectors sign most of the mail."""
    if not _SELECTOR.fullmatch(selector):
        return None, ""
    try:
        ascii_domain = normalize_domain(domain)
    except AddressError:
        return None, ""
    # RFC 6376 §3.6.2.1: the key lives at <selector>._domainkey.<domain>.
    return f"{selector}._domainkey.{domain}".lower(), f"{selector}._domainkey.{ascii_domain}"


# Keys.


@dataclass(slots=True, kw_only=True)
class _KeyLookup:
    records: tuple[bytes, ...] = ()
    error: DkimOutcome | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Key:
    public: PublicKey
    same_domain: bool  # t=s: i= must be in d= itself, not a subdomain (RFC 6376 §3.6.1)
    # The modulus length in octets for an RSA key, 0 for Ed25519; known once, rather than asking the key's
    # type (an ABC check) for every signature.
    rsa_octets: int


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


@functools.lru_cache(maxsize=256)
def _choose_key(records: tuple[bytes, ...], algorithm: str, name: str) -> tuple[_Key | None, str]:
    """The first key record usable with `algorithm` (RFC 6376 §3.6.1, §6.1.2), else why none is.

    Cached: a few senders' key records sign most of the mail, and reading one is a tag-list parse and a
    base64 decode. The answer depends on nothing but the arguments, all immutable."""
    reason = f"no DKIM key record at {name}"
    for record in records:
        key, error = _tag_list(record)
        if "p" not in key:
            continue
        if not key["p"].split():
            return None, "key revoked"  # RFC 6376 §3.6.1: an empty p= revokes the key
        mismatch = _key_mismatch(key, algorithm)
        if mismatch is not None:
            reason = mismatch
            continue
        public = f"key syntax error: {error}" if error else _load_key(key, _KEY_TYPES[algorithm])
        if isinstance(public, str):
            reason = public
            continue
        flags = {flag.strip() for flag in key.get("t", "").split(":")}
        octets = (public.key_size + 7) // 8 if isinstance(public, rsa.RSAPublicKey) else 0
        return _Key(public=public, same_domain="s" in flags, rsa_octets=octets), ""
    return None, reason


def _key_mismatch(key: dict[str, str], algorithm: str) -> str | None:
    services = {item.strip() for item in key.get("s", "*").split(":")}
    hash_names = {item.strip() for item in key.get("h", "sha256").split(":")}
    if key.get("k", "rsa") != _KEY_TYPES[algorithm] or "sha256" not in hash_names:
        return "inappropriate key algorithm"
    if not services & {"*", "email"}:
        return "key not for email"
    return None


def _load_key(tags: dict[str, str], kind: str) -> PublicKey | str:
    if tags.get("v", "DKIM1") != "DKIM1":
        return "key syntax error: v= is not DKIM1"  # RFC 6376 §3.6.1: such records are discarded
    data = _base64(tags["p"])
    if data is None:
        return "key syntax error: p= is not base64"
    return _public_key(kind, data)


@functools.lru_cache(maxsize=256)
def _public_key(kind: str, data: bytes) -> PublicKey | str:
    """The key in p=, or why it cannot be used. Cached: a few senders' keys sign most of the mail."""
    if kind == "ed25519":
        try:
            return ed25519.Ed25519PublicKey.from_public_bytes(data)  # RFC 8463 §4.2: the bare 32 bytes
        except ValueError:
            return "key syntax error: an Ed25519 key is 32 bytes"
    try:
        # RFC 6376 §3.6.1: SubjectPublicKeyInfo; a bare RSAPublicKey (RFC 8017) is read too, as dkimpy does.
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as error:
        return f"key syntax error: {error}"
    if not isinstance(key, rsa.RSAPublicKey):
        return "key syntax error: not an RSA key"
    if key.key_size < MIN_RSA_BITS:
        return f"public key too small: {key.key_size} bits, RFC 8301 requires {MIN_RSA_BITS}"
    return key


def _signature_valid(key: _Key, signature: bytes, data: bytes) -> bool:
    public = key.public
    try:
        if key.rsa_octets:
            # RFC 8017 §8.2.2 wants exactly as many octets as the modulus; some signers drop leading zeros,
            # which leaves the number the same, and dkimpy accepts them.
            rsa_key = cast(rsa.RSAPublicKey, public)
            rsa_key.verify(signature.rjust(key.rsa_octets, b"\0"), data, _PKCS1, _SHA256)
        else:
            # RFC 8463 §3: Ed25519 signs the SHA-256 hash of the header data, not the data itself.
            cast(ed25519.Ed25519PublicKey, public).verify(signature, hashlib.sha256(data).digest())
    except InvalidSignature:
        return False
    return True


# Verification.


async def verify_message(message: bytes, resolver: Resolver) -> list[DkimResult]:
    """Check each DKIM-Signature field of `message`, topmost first, up to MAX_SIGNATURES of them.

    A message without signatures gives an empty list (RFC 8601 "none" is the caller's to report).
    """
    fields = _Message(message)
    signatures = _find_signatures(fields)
    if not signatures:
        return []
    queries = {s.parsed.key_name: s.parsed.query_name for s in signatures if isinstance(s.parsed, _Parsed)}
    names = sorted(queries)
    if len(names) == 1:
        lookups = [await _fetch_key(resolver, queries[names[0]])]  # gather would add a task for nothing
    else:
        lookups = await asyncio.gather(*(_fetch_key(resolver, queries[name]) for name in names))
    keys = dict(zip(names, lookups, strict=True))
    if fields.body_size > THREAD_BODY_SIZE:
        return await asyncio.to_thread(_verify_all, fields, signatures, keys)
    return _verify_all(fields, signatures, keys)


def _verify_all(
    message: _Message, signatures: list[_Signature], keys: dict[str, _KeyLookup]
) -> list[DkimResult]:
    return [_result(signature.tags, *_verify_one(message, signature, keys)) for signature in signatures]


def _verify_one(
    message: _Message, signature: _Signature, keys: dict[str, _KeyLookup]
) -> tuple[DkimOutcome, str]:
    parsed = signature.parsed
    if isinstance(parsed, str):
        return "neutral", parsed
    lookup = keys[parsed.key_name]
    if lookup.error is not None:
        return lookup.error, lookup.reason
    key, reason = _choose_key(lookup.records, parsed.algorithm, parsed.key_name)
    if key is None:
        return "permerror", reason
    if not message.readable:
        return "permerror", "message header cannot be parsed"
    if key.same_domain and parsed.auid_domain != parsed.domain:
        return "permerror", "the key (t=s) requires i= in d= itself, not a subdomain"
    body_hash = message.body_hash(parsed.relaxed_body, parsed.length)
    if body_hash is None:
        return "fail", "body hash mismatch: the body is shorter than l="
    if body_hash != parsed.body_hash:
        return "fail", "body hash mismatch"
    data = message.signed_data(signature.field, parsed.signed, parsed.relaxed_header)
    if not _signature_valid(key, parsed.signature, data):
        return "fail", "signature did not verify"
    return "pass", "signature verified"


def _result(tags: dict[str, str], result: DkimOutcome, reason: str) -> DkimResult:
    return DkimResult(
        domain=tags.get("d", ""),
        selector=tags.get("s", ""),
        identity=tags.get("i"),
        algorithm=tags.get("a", ""),
        result=result,
        reason=reason,
        partial_body="l" in tags,
        signature_prefix="".join(tags.get("b", "").split())[:8],
    )
