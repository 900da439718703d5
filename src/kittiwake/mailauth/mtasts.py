"""MTA-STS (RFC 8461): a recipient domain's promise that its MX hosts take mail over verified TLS.

Theory of operation: before delivering to a domain the sender looks up the TXT record `_mta-sts.<domain>`
(§3.1). Its `id` names the current policy; the policy itself is a small text file served over HTTPS at
`https://mta-sts.<domain>/.well-known/mta-sts.txt` (§3.2, §3.3) listing the MX host patterns, a mode and
a lifetime. Policies are cached for their `max_age` and fetched again only when the TXT `id` changes or
the cached copy has expired (§5.1). A domain whose live policy cannot be had (no TXT record, DNS down, HTTPS
fetch failed, invalid policy) keeps the cached policy until it expires (§3.3, §10.2); with nothing cached,
the domain is treated as having no policy. Under an "enforce" policy only the MX hosts that match a
pattern may be used, over TLS with a certificate valid for the MX name (§4.1, §4.2, §5); "testing" asks
for reports only, and "none" withdraws the policy (§8.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from kittiwake.mail.address import AddressError, normalize_domain
from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

StsMode = Literal["enforce", "testing", "none"]

MAX_AGE_LIMIT = 31_557_600  # RFC 8461 §3.2: max_age is at most about one year
MAX_POLICY_SIZE = 65_536
FETCH_TIMEOUT = 60.0
FETCH_RETRY_INTERVAL = 300.0
POLICY_PATH = "/.well-known/mta-sts.txt"  # RFC 8461 §3.2

_MODES: dict[str, StsMode] = {"enforce": "enforce", "testing": "testing", "none": "none"}
_WSP = " \t"
# RFC 8461 §3.1: sts-ext-name, sts-id, sts-ext-value.
_TXT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", re.ASCII)
_TXT_ID = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)
_TXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
# RFC 8461 §3.2: sts-policy-ext-name ":" *WSP value *WSP, the value printable (UTF-8 allowed) with inner blanks.
_POLICY_FIELD = re.compile(
    r"([A-Za-z0-9][A-Za-z0-9_.-]{0,31}):[ \t]*([^\x00-\x20\x7f](?:[ \t]*[^\x00-\x20\x7f])*)[ \t]*"
)
_MAX_AGE = re.compile(r"[0-9]{1,10}", re.ASCII)
# RFC 8461 §3.2: sts-policy-mx-value = ["*."] Domain, Domain as in RFC 5321 §4.1.2 (A-labels only).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_MX_PATTERN = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*", re.ASCII)
_STS_PREFIX = re.compile(rb"v=STSv1[ \t]*;")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")


class StsSyntaxError(ValueError):
    """A TXT record or policy file that does not follow the RFC 8461 grammar."""


class PolicyFetchError(Exception):
    """The policy file could not be had: connection, certificate, HTTP status, media type, size or time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StsRecord:
    """The `_mta-sts` TXT record: the policy id and any extension fields, in order."""

    id: str
    extensions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StsPolicy:
    """A parsed policy file; `mx` holds lower-case patterns, `max_age` seconds (capped at one year)."""

    version: str
    mode: StsMode
    mx: tuple[str, ...]
    max_age: int
    extensions: tuple[tuple[str, str], ...] = ()


class MxSelection(NamedTuple):
    """The MX hosts that may be tried, in the order given, and whether TLS must be verified for them."""

    allowed: tuple[str, ...]
    verify_tls: bool


class PolicyFetcher(Protocol):
    async def fetch(self, domain: str) -> bytes:
        """The body of the domain's policy file; raises PolicyFetchError."""
        ...


def _decode(data: bytes | str, encoding: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise StsSyntaxError(f"not {encoding}") from error


def parse_sts_txt(record: bytes | str) -> StsRecord:
    """Parse `v=STSv1; id=...` (RFC 8461 §3.1); raises StsSyntaxError."""
    text = _decode(record, "ascii")
    if not text.startswith("v=STSv1"):
        raise StsSyntaxError("record does not start with v=STSv1")
    before, *fields = text[len("v=STSv1") :].split(";")
    if before.strip(_WSP):
        raise StsSyntaxError("text after the version")
    if len(fields) > 1 and not fields[-1].strip(_WSP):
        fields.pop()  # one optional trailing delimiter
    record_id = ""
    extensions: list[tuple[str, str]] = []
    for field in fields:
        key, equals, value = field.strip(_WSP).partition("=")
        if not equals or not _TXT_KEY.fullmatch(key):
            raise StsSyntaxError(f"bad field {field!r}")
        if key == "id":
            if not _TXT_ID.fullmatch(value):
                raise StsSyntaxError(f"bad id {value!r}")
            record_id = record_id or value  # RFC 8461 §3.2: the first occurrence counts
        elif _TXT_VALUE.fullmatch(value):
            extensions.append((key, value))
        else:
            raise StsSyntaxError(f"bad value in {field!r}")
    if not record_id:
        raise StsSyntaxError("no id")
    return StsRecord(id=record_id, extensions=tuple(extensions))


def _policy_value(key: str, value: str) -> str:
    if key == "version" and value != "STSv1":
        raise StsSyntaxError(f"unknown version {value!r}")
    if key == "mode" and value not in _MODES:
        raise StsSyntaxError(f"unknown mode {value!r}")
    if key == "max_age" and not _MAX_AGE.fullmatch(value):
        raise StsSyntaxError(f"bad max_age {value!r}")
    if key == "mx" and not _MX_PATTERN.fullmatch(value):
        raise StsSyntaxError(f"bad mx {value!r}")
    return value


def parse_policy(text: bytes | str) -> StsPolicy:
    """Parse a policy file (RFC 8461 §3.2), lines ending in CRLF or LF; raises StsSyntaxError.

    Unknown fields are kept as extensions; of a repeated field other than `mx` the first counts."""
    lines = _decode(text, "utf-8").split("\n")
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # RFC 8461 §3.2: one optional final line end
    fields: dict[str, str] = {}
    mx: list[str] = []
    extensions: list[tuple[str, str]] = []
    for line in lines:
        match = _POLICY_FIELD.fullmatch(line.removesuffix("\r"))
        if match is None:
            raise StsSyntaxError(f"bad line {line!r}")
        key, value = match.group(1), _policy_value(match.group(1), match.group(2))
        if key == "mx":
            mx.append(value.lower())
        elif key in ("version", "mode", "max_age"):
            fields.setdefault(key, value)
        else:
            extensions.append((key, value))
    missing = {"version", "mode", "max_age"} - fields.keys()
    if missing:
        raise StsSyntaxError(f"missing {', '.join(sorted(missing))}")
    mode = _MODES[fields["mode"]]
    if not mx and mode != "none":
        raise StsSyntaxError("no mx")  # RFC 8461 §3.2: required except in mode none
    return StsPolicy(
        version=fields["version"],
        mode=mode,
        mx=tuple(mx),
        max_age=min(int(fields["max_age"]), MAX_AGE_LIMIT),
        extensions=tuple(extensions),
    )


def mx_matches(pattern: str, host: str) -> bool:
    """Whether an MX host name matches a policy pattern (RFC 8461 §4.1).

    A leading `*.` stands for exactly one whole label: `*.example.com` matches `mx.example.com`, but neither
    `example.com` nor `a.b.example.com`. Comparison ignores case and a final dot."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first and dot) and rest == pattern[2:]
    return host == pattern


def _allowed(policy: StsPolicy, host: str) -> bool:
    return any(mx_matches(pattern, host) for pattern in policy.mx)


def filter_mx(policy: StsPolicy | None, hosts: Sequence[str]) -> MxSelection:
    """The MX hosts a delivery may use under `policy` (RFC 8461 §5).

    "enforce" keeps only the hosts matching a pattern and requires verified TLS: STARTTLS, a certificate
    chaining to a trusted root and valid for the MX host name (§4.2). When nothing is left, the delivery is
    deferred, never sent elsewhere (§5.1). "testing", "none" and no policy leave the hosts and TLS as they
    are; under "testing", `mx_mismatches` names the hosts to report (RFC 8460)."""
    if policy is None or policy.mode != "enforce":
        return MxSelection(allowed=tuple(hosts), verify_tls=False)
    return MxSelection(allowed=tuple(host for host in hosts if _allowed(policy, host)), verify_tls=True)


def mx_mismatches(policy: StsPolicy | None, hosts: Sequence[str]) -> tuple[str, ...]:
    """The hosts no pattern of the policy matches (none when there is no policy or its mode is "none")."""
    if policy is None or policy.mode == "none":
        return ()
    return tuple(host for host in hosts if not _allowed(policy, host))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Cached:
    policy: StsPolicy
    policy_id: str
    expires: float


class StsPolicyCache:
    """Policies by domain, in memory. Time comes in as the `now` argument (seconds since the epoch).

    After a failed fetch the domain is not fetched again for `retry_interval` seconds (RFC 8461 §3.3 lets
    senders limit the rate of fetches); the cached policy, if any, serves meanwhile."""

    def __init__(self, *, retry_interval: float = FETCH_RETRY_INTERVAL) -> None:
        self._retry_interval = retry_interval
        self._entries: dict[str, _Cached] = {}
        self._retry_at: dict[str, float] = {}

    async def get_policy(
        self, domain: str, resolver: Resolver, fetcher: PolicyFetcher, now: float
    ) -> StsPolicy | None:
        """The policy to apply to mail for `domain` now, or None when it has none (RFC 8461 §5.1)."""
        try:
            key = normalize_domain(domain.rstrip("."))
        except AddressError:
            return None
        if key.startswith("["):
            return None  # an address literal names no domain to publish a policy
        cached = self._entries.get(key)
        if cached is not None and cached.expires <= now:
            del self._entries[key]
            cached = None
        fallback = cached.policy if cached is not None else None
        record_id = await _discover(key, resolver)
        if record_id is None or (cached is not None and cached.policy_id == record_id):
            return fallback  # RFC 8461 §3.3, §10.2: no live policy found, so a cached one still applies
        if self._retry_at.get(key, 0.0) > now:
            return fallback
        try:
            policy = parse_policy(await fetcher.fetch(key))
        except (PolicyFetchError, StsSyntaxError):
            self._retry_at[key] = now + self._retry_interval
            return fallback
        self._retry_at.pop(key, None)
        self._entries[key] = _Cached(policy=policy, policy_id=record_id, expires=now + policy.max_age)
        return policy


async def _discover(domain: str, resolver: Resolver) -> str | None:
    """The policy id from `_mta-sts.<domain>`, or None when there is no single valid record (RFC 8461 §3.1)."""
    try:
        answers = await resolver.txt(f"_mta-sts.{domain}")
    except (DnsError, NoSuchDomain):
        return None
    # RFC 8461 §3.1: records not starting with "v=STSv1;" are skipped; anything but exactly one left is no policy.
    candidates = [answer for answer in answers if _STS_PREFIX.match(answer)]
    if len(candidates) != 1:
        return None
    try:
        return parse_sts_txt(candidates[0]).id
    except StsSyntaxError:
        return None


class HttpsPolicyFetcher:
    """Fetches `https://mta-sts.<domain>/.well-known/mta-sts.txt` with HTTP/1.1 (RFC 8461 §3.3).

    The certificate must chain to the system's trusted roots and be valid for `mta-sts.<domain>`; redirects
    are not followed; the whole exchange is bounded in time and the body in size."""

    def __init__(
        self,
        *,
        timeout: float = FETCH_TIMEOUT,
        max_size: int = MAX_POLICY_SIZE,
        context: ssl.SSLContext | None = None,
        port: int = 443,
    ) -> None:
        self._timeout = timeout
        self._max_size = max_size
        self._context = context if context is not None else ssl.create_default_context()
        self._port = port

    async def fetch(self, domain: str) -> bytes:
        host = f"mta-sts.{domain}"
        request = (
            f"GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\nAccept: text/plain\r\n"
            "User-Agent: kittiwake\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await asyncio.open_connection(
                    host, self._port, ssl=self._context, server_hostname=host
                )
                try:
                    writer.write(request)
                    await writer.drain()
                    return await read_policy_response(reader, self._max_size)
                finally:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
        except (OSError, TimeoutError) as error:
            # ssl.SSLError, raised for an untrusted certificate or one for another name, is an OSError.
            raise PolicyFetchError(f"{host}: {error}") from None


async def read_policy_response(reader: asyncio.StreamReader, max_size: int) -> bytes:
    """The body of an HTTP/1.1 response carrying a policy; raises PolicyFetchError for anything but a
    200 `text/plain` response of at most `max_size` bytes (RFC 8461 §3.3: redirects are not followed)."""
    try:
        return await _read_response(reader, max_size)
    except (EOFError, ValueError, asyncio.LimitOverrunError) as error:
        # IncompleteReadError is an EOFError; a line longer than the reader's limit a ValueError.
        raise PolicyFetchError(f"bad HTTP response: {error}") from None


async def _read_response(reader: asyncio.StreamReader, max_size: int) -> bytes:
    status = await reader.readline()
    parts = status.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise PolicyFetchError(f"bad status line {status[:100]!r}")
    if parts[1] != b"200":
        raise PolicyFetchError(f"HTTP status {parts[1][:10].decode('latin-1')}")
    headers = await _read_headers(reader)
    media_type = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
    if media_type != b"text/plain":
        raise PolicyFetchError(f"media type {media_type[:100].decode('latin-1')!r}, not text/plain")
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return await _read_chunked(reader, max_size)
    length = headers.get(b"content-length")
    if length is not None:
        if not length.isdigit() or int(length) > max_size:
            raise PolicyFetchError(f"bad or too large Content-Length {length[:20]!r}")
        return await reader.readexactly(int(length))
    body = b""
    while len(body) <= max_size:
        more = await reader.read(max_size + 1 - len(body))
        if not more:
            return body
        body += more
    raise PolicyFetchError("policy larger than the limit")


async def _read_headers(reader: asyncio.StreamReader) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    for _ in range(100):
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise PolicyFetchError("response headers cut short")
        if line in (b"\r\n", b"\n"):
            return headers
        name, colon, value = line.partition(b":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    raise PolicyFetchError("too many response header lines")


async def _read_chunked(reader: asyncio.StreamReader, max_size: int) -> bytes:
    body = bytearray()
    while True:
        size_line = (await reader.readline()).partition(b";")[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_line):
            raise PolicyFetchError(f"bad chunk size {size_line[:20]!r}")
        size = int(size_line, 16)
        if size == 0:
            return bytes(body)
        if len(body) + size > max_size:
            raise PolicyFetchError("policy larger than the limit")
        body += await reader.readexactly(size)
        if await reader.readline() not in (b"\r\n", b"\n"):
            raise PolicyFetchError("chunk not followed by a line end")
