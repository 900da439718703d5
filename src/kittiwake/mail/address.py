"""Addresses: the RFC 5322 §3.4 address-list of header fields, and SMTP mailboxes and paths
(RFC 5321 §4.1.2, with RFC 6531 UTF-8) with IDNA domain normalisation."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from typing import NamedTuple

from kittiwake.mail.encoded_words import decode_header_value
from kittiwake.mail.headers import read_quoted_string, skip_comment


class AddressError(ValueError):
    """A mailbox or path that does not follow RFC 5321 §4.1.2."""


class ParsedAddress(NamedTuple):
    """One entry of an address list, shaped as RFC 9051 §9 `address`.

    Group syntax is a start entry (`mailbox` = group name, `host` None) and an end entry (all None).
    A mailbox with no domain or no local part gets "" there, so `host` None always means a group marker.
    """

    name: str | None  # display name, raw (encoded words kept)
    adl: str | None  # obsolete source route, e.g. "@a.example,@b.example"
    mailbox: str | None
    host: str | None


# (kind, text, whitespace before); kind is "atom", "quoted", "literal" or the special character itself
_Token = tuple[str, str, bool]
_LIST_TOKEN = re.compile(
    r"(?P<space>[ \t\r\n]+)|(?P<quoted>\")|(?P<comment>\()|(?P<literal>\[(?:[^\]\\]|\\.)*\]?)"
    r"|(?P<special>[<>@,;:.])|(?P<atom>[^ \t\r\n\"()\[<>@,;:.]+|.)",
    re.DOTALL,
)


def _tokenize(value: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    space = False
    while position < len(value):
        match = _LIST_TOKEN.match(value, position)
        assert match is not None  # the last alternative matches any character
        kind = match.lastgroup or "atom"
        if kind == "space":
            space, position = True, match.end()
        elif kind == "comment":
            end = skip_comment(value, position)
            tokens.append(("comment", _comment_text(value[position:end]), space))
            space, position = True, end
        elif kind == "quoted":
            text, position = read_quoted_string(value, position)
            tokens.append(("quoted", text, space))
            space = False
        else:
            tokens.append((match[0] if kind == "special" else kind, match[0], space))
            position, space = match.end(), False
    return tokens


def _comment_text(comment: str) -> str:
    """A comment's text without its parentheses and quoted-pairs (RFC 5322 §3.2.2)."""
    inner = comment[1:-1] if comment.endswith(")") else comment[1:]
    return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL).strip()


def _phrase(tokens: list[_Token]) -> str | None:
    text = "".join((" " if space else "") + word for _kind, word, space in tokens).strip()
    return text or None


def _spec_text(tokens: list[_Token]) -> str:
    return "".join(_quote(text) if kind == "quoted" else text for kind, text, _space in tokens)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _addr_spec(tokens: list[_Token]) -> tuple[str, str]:
    at = max((i for i, token in enumerate(tokens) if token[0] == "@"), default=-1)
    if at < 0:
        return _spec_text(tokens), ""
    return _spec_text(tokens[:at]), _spec_text(tokens[at + 1 :])


def _angle_address(tokens: list[_Token], position: int) -> tuple[tuple[str | None, str, str], int]:
    """Read an angle-addr whose contents start at `position`: ((route, local, domain), index after ">")."""
    end = next((i for i in range(position, len(tokens)) if tokens[i][0] == ">"), len(tokens))
    inner = [token for token in tokens[position:end] if token[0] != "comment"]
    route: str | None = None
    # RFC 5322 §4.4: obs-route "@a,@b:" before the addr-spec.
    colon = next((i for i, token in enumerate(inner) if token[0] == ":"), -1)
    if inner and inner[0][0] == "@" and colon > 0:
        route = _spec_text(inner[:colon]) or None
        inner = inner[colon + 1 :]
    local, domain = _addr_spec(inner)
    return (route, local, domain), end + 1


def parse_address_list(value: str) -> tuple[ParsedAddress, ...]:
    """Parse an RFC 5322 §3.4 address-list (mailboxes and groups); never raises, junk gives best effort.

    A mailbox with no display name takes the text of its last comment as one, as in the older
    `user@domain (Real Name)` form: Dovecot's ENVELOPE does so (and imaptest expects it).
    """
    tokens = _tokenize(value)
    result: list[ParsedAddress] = []
    phrase: list[_Token] = []
    angle: tuple[str | None, str, str] | None = None
    comment: str | None = None  # the last comment of the current mailbox
    in_group = False

    def flush() -> None:
        nonlocal angle, comment
        if angle is not None:
            result.append(ParsedAddress(_phrase(phrase) or comment or None, angle[0], angle[1], angle[2]))
        elif phrase:
            local, domain = _addr_spec(phrase)
            result.append(ParsedAddress(comment or None, None, local, domain))
        phrase.clear()
        angle = None
        comment = None

    position = 0
    while position < len(tokens):
        token = tokens[position]
        kind = token[0]
        position += 1
        if kind == "comment":
            comment = token[1]
        elif kind == "<" and angle is None:
            angle, position = _angle_address(tokens, position)
        elif kind == ",":
            flush()
        elif kind == ":" and not in_group and angle is None:
            result.append(ParsedAddress(None, None, _phrase(phrase) or "", None))
            phrase.clear()
            comment = None
            in_group = True
        elif kind == ";":
            flush()
            if in_group:
                result.append(ParsedAddress(None, None, None, None))
                in_group = False
        elif kind != ">" and angle is None:
            phrase.append(token)
    flush()
    if in_group:
        result.append(ParsedAddress(None, None, None, None))
    return tuple(result)


def format_address_list(value: str) -> str:
    """An address-list field value, raw as in the header, written out as a reader sees it.

    Each mailbox becomes `Display Name <local@domain>` (or `local@domain` without a display name), with the
    name's encoded words decoded (RFC 2047 §5), its quoting and quoted-pairs undone, and comments and
    folding whitespace gone (RFC 5322 §3.4); a group becomes `name: member, member;`. SEARCH FROM, TO, CC
    and BCC match against this as well as against the decoded field (RFC 9051 §6.4.4), as Dovecot matches
    the address list it rewrites, so `Joe Q. Public <jqp@x.test>` is found however the field spelled it.
    """
    pieces: list[str] = []
    previous = ""  # "group", "member" or "", what the last piece was
    for entry in parse_address_list(value):
        if entry.mailbox is None:  # the end of a group
            pieces.append(";")
            previous = "member"
            continue
        if previous == "member":
            pieces.append(", ")
        elif previous == "group":
            pieces.append(" ")
        if entry.host is None:  # the start of a group: its display name
            pieces.append(decode_header_value(entry.mailbox) + ":")
            previous = "group"
            continue
        address = f"{entry.mailbox}@{entry.host}" if entry.host else entry.mailbox
        pieces.append(f"{decode_header_value(entry.name)} <{address}>" if entry.name else address)
        previous = "member"
    return "".join(pieces)


# RFC 5321 §4.1.2 with RFC 6531 §3.3: atext and qtextSMTP extended with UTF8-non-ascii (no lone surrogates).
_NON_ASCII = "\u0080-\ud7ff\ue000-\U0010ffff"
_ATEXT = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~\-{_NON_ASCII}]"
_DOT_STRING = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_QUOTED_STRING = re.compile(rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_NON_ASCII}]|\\[\x20-\x7e])*"')
_SUB_DOMAIN = re.compile(rf"[A-Za-z0-9{_NON_ASCII}](?:[A-Za-z0-9\-{_NON_ASCII}]*[A-Za-z0-9{_NON_ASCII}])?")
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+")
_SOURCE_ROUTE = re.compile(r"@[^,:]+(?:,@[^,:]+)*:")
_MAX_LOCAL_OCTETS = 64  # RFC 5321 §4.5.3.1.1
_MAX_DOMAIN_OCTETS = 255  # RFC 5321 §4.5.3.1.2
_MAX_PATH_OCTETS = 256  # RFC 5321 §4.5.3.1.3


def _octets(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def parse_address(text: str) -> tuple[str, str]:
    """Split and validate an SMTP mailbox `local@domain` (RFC 5321 §4.1.2, RFC 6531): (local, domain).

    The local part is a dot-string or a quoted string, kept as written; the domain is a domain name (checked
    by IDNA) or an address literal. Raises AddressError.
    """
    local, at, domain = text.rpartition("@")
    if not at:
        raise AddressError(f"no @ in mailbox {text!r}")
    if not (_DOT_STRING.fullmatch(local) or _QUOTED_STRING.fullmatch(local)):
        raise AddressError(f"bad local part {local!r}")
    if _octets(local) > _MAX_LOCAL_OCTETS:
        raise AddressError("local part longer than 64 octets")
    if domain.startswith("["):
        _check_address_literal(domain)
    else:
        normalize_domain(domain)
    return local, domain


def _check_address_literal(literal: str) -> None:
    if not literal.endswith("]"):
        raise AddressError(f"unclosed address literal {literal!r}")
    inner = literal[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(inner[5:])
        elif _GENERAL_LITERAL.fullmatch(inner):
            pass  # RFC 5321 §4.1.3 General-address-literal: a standardized tag we do not interpret
        else:
            ipaddress.IPv4Address(inner)
    except ValueError as error:
        raise AddressError(f"bad address literal {literal!r}") from error


def normalize_domain(domain: str) -> str:
    """A domain name as lower-case A-labels (IDNA), for comparison and for the wire without SMTPUTF8.

    Address literals are returned unchanged. Raises AddressError for a name that is not a valid domain.
    """
    if domain.startswith("["):
        return domain
    if not domain or _octets(domain) > _MAX_DOMAIN_OCTETS:
        raise AddressError(f"bad domain length {domain!r}")
    labels = domain.split(".")
    if not all(_SUB_DOMAIN.fullmatch(label) for label in labels):
        raise AddressError(f"bad domain {domain!r}")
    if domain.isascii():
        return domain.lower()
    try:
        return b".".join(label.encode("idna") for label in labels).decode("ascii").lower()
    except UnicodeError as error:
        raise AddressError(f"bad internationalized domain {domain!r}") from error


def domain_to_unicode(domain: str) -> str:
    """A domain with its A-labels turned back into U-labels (for display); unreadable labels stay as they are."""
    labels = []
    for label in domain.split("."):
        if label[:4].lower() == "xn--":
            with contextlib.suppress(UnicodeError):
                label = label.encode("ascii").decode("idna")
        labels.append(label)
    return ".".join(labels)


def canonical_address(text: str) -> str:
    """The form of a mailbox used to compare and look it up: a quoted local part that needs no quotes loses
    them (RFC 5321 §4.1.2), the local part otherwise unchanged, the domain lower-case A-labels.
    Raises AddressError."""
    local, domain = parse_address(text)
    if local.startswith('"'):
        unquoted = re.sub(r"\\(.)", r"\1", local[1:-1])
        if _DOT_STRING.fullmatch(unquoted):
            local = unquoted
    return f"{local}@{normalize_domain(domain)}"


def parse_path(text: str, *, allow_postmaster: bool = False) -> tuple[str, str] | None:
    """Parse an SMTP Reverse-path or Forward-path `<...>` (RFC 5321 §4.1.2): (local, domain), None for `<>`.

    A source route is accepted and dropped (RFC 5321 §4.1.1.3 and Appendix C). With `allow_postmaster`,
    `<Postmaster>` without a domain gives ("Postmaster", "") (RFC 5321 §4.1.1.3). Raises AddressError.
    """
    if not (text.startswith("<") and text.endswith(">")):
        raise AddressError(f"path not in angle brackets {text!r}")
    if _octets(text) > _MAX_PATH_OCTETS:
        raise AddressError("path longer than 256 octets")
    inner = text[1:-1]
    if not inner:
        return None
    route = _SOURCE_ROUTE.match(inner)
    if route is not None:
        inner = inner[route.end() :]
    if allow_postmaster and inner.lower() == "postmaster":
        return "Postmaster", ""
    return parse_address(inner)
