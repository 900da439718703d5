"""Settings of the SMTP server core: which extensions it offers and the limits it enforces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerExtensions:
    """Extensions offered in the EHLO reply. ENHANCEDSTATUSCODES (RFC 2034) is always offered."""

    pipelining: bool = True  # RFC 2920
    eightbitmime: bool = True  # RFC 6152
    smtputf8: bool = True  # RFC 6531
    chunking: bool = True  # RFC 3030 BDAT
    binarymime: bool = True  # RFC 3030 §3, offered only with chunking
    dsn: bool = True  # RFC 3461
    requiretls: bool = True  # RFC 8689, offered only once TLS is active
    starttls: bool = False  # RFC 3207, offered until TLS is active
    auth_mechanisms: tuple[str, ...] = ()  # RFC 4954, upper-case SASL names; empty: no AUTH
    auth_requires_tls: bool = True  # offer and accept AUTH only over TLS
    auth_required: bool = False  # MAIL before a successful AUTH gets 530 5.7.0 (submission)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    max_line_length: int = 512  # RFC 5321 §4.5.3.1.4, CRLF included
    # RFC 5321 §4.5.3.1.4: extensions may raise the limit for MAIL/RCPT (RFC 3461 ORCPT alone adds 500).
    max_parameter_line_length: int = 2048
    max_auth_line_length: int = 12288  # RFC 4954 §4
    max_message_size: int | None = 50 * 1024 * 1024  # SIZE offered; None: no fixed limit
    max_recipients: int = 100  # RFC 5321 §4.5.3.1.8: at least 100 must be accepted
    max_bad_commands: int = 20  # then 421 4.7.0 and close


def ehlo_keywords(
    extensions: ServerExtensions, limits: ServerLimits, *, tls_active: bool, authenticated: bool
) -> list[str]:
    """The EHLO reply's keyword lines for the connection's current TLS and authentication state."""
    ext = extensions
    size = limits.max_message_size
    tls_ok = tls_active or not ext.auth_requires_tls
    offered = [
        ("PIPELINING", ext.pipelining),
        (f"SIZE {size}" if size is not None else "SIZE", True),  # RFC 1870 §4
        ("8BITMIME", ext.eightbitmime),
        ("SMTPUTF8", ext.smtputf8),
        ("ENHANCEDSTATUSCODES", True),
        ("STARTTLS", ext.starttls and not tls_active),  # RFC 3207 §4.2: not offered again over TLS
        ("AUTH " + " ".join(ext.auth_mechanisms), bool(ext.auth_mechanisms) and tls_ok and not authenticated),
        ("CHUNKING", ext.chunking),
        ("BINARYMIME", ext.chunking and ext.binarymime),  # RFC 3030 §3: requires CHUNKING
        ("DSN", ext.dsn),
        ("REQUIRETLS", ext.requiretls and tls_active),  # RFC 8689 §4: only over TLS
    ]
    return [keyword for keyword, on in offered if on]
