"""SPF record grammar and macro strings (RFC 7208 §4.5, §4.6.1, §7, §12): parsing and expansion, no I/O."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import quote

Qualifier = Literal["+", "-", "?", "~"]
MechanismName = Literal["all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"]

MECHANISMS: frozenset[str] = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
# RFC 7208 §7.2: c, r and t may only appear in explanation text.
DOMAIN_MACRO_LETTERS = frozenset("slodiphv")
EXPLANATION_MACRO_LETTERS = DOMAIN_MACRO_LETTERS | frozenset("crt")


class SpfSyntaxError(ValueError):
    """The text breaks the RFC 7208 grammar; check_host() turns this into "permerror"."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Macro:
    """One %{...} expansion (RFC 7208 §7.1): letter, then keep-rightmost count, reversal and delimiters."""

    letter: str
    keep: int | None = None
    reverse: bool = False
    delimiters: str = "."
    url_escape: bool = False


MacroString = tuple[str | Macro, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Directive:
    """A qualifier and a mechanism; `text` is the term as written, for reports."""

    qualifier: Qualifier
    mechanism: MechanismName
    text: str
    domain: MacroString | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr4: int = 32
    cidr6: int = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class SpfRecord:
    directives: tuple[Directive, ...]
    redirect: MacroString | None = None
    explanation: MacroString | None = None


_VERSION = "v=spf1"
_MACRO_TOKEN = re.compile(r"%\{[^}]*\}|%.?|[^%]+", re.DOTALL)
_MACRO_BODY = re.compile(r"([a-zA-Z])([0-9]*)([rR]?)([.\-+,/_=]*)")
_MACRO_ESCAPES = {"%%": "%", "%_": " ", "%-": "%20"}
_LITERAL = re.compile(r"[\x21-\x24\x26-\x7e]*")
_EXPLAIN_LITERAL = re.compile(r"[\x20-\x24\x26-\x7e]*")
_TOPLABEL = re.compile(r"[a-zA-Z0-9]*[a-zA-Z][a-zA-Z0-9]*|[a-zA-Z0-9]+-[a-zA-Z0-9-]*[a-zA-Z0-9]")
_MODIFIER = re.compile(r"([a-zA-Z][a-zA-Z0-9\-_.]*)=(.*)", re.DOTALL)
_MECHANISM = re.compile(r"([+\-?~]?)([a-zA-Z0-9]+)(.*)", re.DOTALL)
_DOMAIN_AND_CIDR = re.compile(
    r"(?::(?P<domain>.*?))?(?:/(?P<cidr4>[0-9]+))?(?://(?P<cidr6>[0-9]+))?", re.DOTALL
)
_NETWORK = re.compile(r":(?P<network>[^/]*)(?:/(?P<cidr>[0-9]+))?", re.DOTALL)
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IP4_NETWORK = re.compile(rf"{_QNUM}\.{_QNUM}\.{_QNUM}\.{_QNUM}")
_IP6_NETWORK = re.compile(r"[0-9a-fA-F:.]+")
# RFC 7208 §7.3: an expanded name longer than this loses labels from the left.
MAX_DOMAIN_LENGTH = 253
# RFC 7208 §12: ip4-cidr-length and ip6-cidr-length allow no leading zeros.
_CIDR_DIGITS = re.compile(r"0|[1-9][0-9]{0,2}")


def is_spf_record(text: bytes) -> bool:
    """RFC 7208 §4.5: the record starts with exactly "v=spf1", ended by a space or the end of the text."""
    return text[:6].lower() == b"v=spf1" and text[6:7] in (b"", b" ")


def parse_spf_record(text: str) -> SpfRecord:
    """The whole record checked at once (RFC 7208 §4.6: a syntax error anywhere is a permerror)."""
    if not text.isascii():
        raise SpfSyntaxError("SPF records are 7-bit ASCII (RFC 7208 §3.1)")
    if text[:6].lower() != _VERSION or text[6:7] not in ("", " "):
        raise SpfSyntaxError("record does not start with v=spf1")
    directives: list[Directive] = []
    modifiers: dict[str, MacroString] = {}
    # RFC 7208 §4.6.1: terms are separated by one or more SP, and trailing SP is allowed.
    for term in text[6:].split(" "):
        if not term:
            continue
        modifier = _MODIFIER.fullmatch(term)
        if modifier:
            _add_modifier(modifiers, modifier.group(1).lower(), modifier.group(2))
        else:
            directives.append(_parse_directive(term))
    return SpfRecord(
        directives=tuple(directives), redirect=modifiers.get("redirect"), explanation=modifiers.get("exp")
    )


def _add_modifier(modifiers: dict[str, MacroString], name: str, value: str) -> None:
    if name in ("redirect", "exp"):
        # RFC 7208 §6: redirect and exp each appear at most once.
        if name in modifiers:
            raise SpfSyntaxError(f"{name}= appears twice")
        modifiers[name] = parse_domain_spec(value)
    else:
        # RFC 7208 §6: unknown modifiers are ignored, but must still be valid macro-strings (§12).
        parse_macro_string(value, letters=EXPLANATION_MACRO_LETTERS)


def _parse_directive(term: str) -> Directive:
    match = _MECHANISM.fullmatch(term)
    if not match or match.group(2).lower() not in MECHANISMS:
        raise SpfSyntaxError(f"unknown mechanism {term!r}")
    qualifier = cast(Qualifier, match.group(1) or "+")
    name = cast(MechanismName, match.group(2).lower())
    rest = match.group(3)
    if name == "all":
        if rest:
            raise SpfSyntaxError(f"all takes no argument: {term!r}")
        return Directive(qualifier=qualifier, mechanism=name, text=term)
    if name in ("include", "exists", "ptr"):
        if name == "ptr" and not rest:
            return Directive(qualifier=qualifier, mechanism=name, text=term)
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs ':' and a domain: {term!r}")
        return Directive(qualifier=qualifier, mechanism=name, text=term, domain=parse_domain_spec(rest[1:]))
    if name in ("a", "mx"):
        return _parse_address_mechanism(qualifier, name, rest, term)
    return _parse_network(qualifier, name, rest, term)


def _parse_address_mechanism(qualifier: Qualifier, name: MechanismName, rest: str, term: str) -> Directive:
    # RFC 7208 §5.3, §5.4: [ ":" domain-spec ] [ dual-cidr-length ]
    match = _DOMAIN_AND_CIDR.fullmatch(rest)
    if not match:
        raise SpfSyntaxError(f"bad {name} mechanism {term!r}")
    domain = match.group("domain")
    return Directive(
        qualifier=qualifier,
        mechanism=name,
        text=term,
        domain=None if domain is None else parse_domain_spec(domain),
        cidr4=_cidr(match.group("cidr4"), 32),
        cidr6=_cidr(match.group("cidr6"), 128),
    )


def _parse_network(qualifier: Qualifier, name: MechanismName, rest: str, term: str) -> Directive:
    # RFC 7208 §5.6: ip4 / ip6 ":" network [ cidr-length ]; omitting octets is not allowed.
    match = _NETWORK.fullmatch(rest)
    ip4 = name == "ip4"
    pattern = _IP4_NETWORK if ip4 else _IP6_NETWORK
    if not match or not pattern.fullmatch(match.group("network")):
        raise SpfSyntaxError(f"bad {name} network {term!r}")
    length = _cidr(match.group("cidr"), 32 if ip4 else 128)
    try:
        network = ipaddress.ip_network(f"{match.group('network')}/{length}", strict=False)
    except ValueError as error:
        raise SpfSyntaxError(f"bad {name} network {term!r}") from error
    if network.version != (4 if ip4 else 6):
        raise SpfSyntaxError(f"bad {name} network {term!r}")
    return Directive(qualifier=qualifier, mechanism=name, text=term, network=network)


def _cidr(digits: str | None, maximum: int) -> int:
    if digits is None:
        return maximum
    if not _CIDR_DIGITS.fullmatch(digits) or int(digits) > maximum:
        raise SpfSyntaxError(f"bad CIDR length /{digits}")
    return int(digits)


def parse_domain_spec(text: str) -> MacroString:
    """RFC 7208 §7.1: domain-spec = macro-string domain-end; domain-end is "." toplabel ["."] or a macro."""
    if not text:
        raise SpfSyntaxError("empty domain-spec")
    tokens, ends_with_macro = _tokenize(text, letters=DOMAIN_MACRO_LETTERS, space_allowed=False)
    if not ends_with_macro:
        last = tokens[-1]
        assert isinstance(last, str)
        body = last.removesuffix(".")
        dot = body.rfind(".")
        if dot < 0 or not _TOPLABEL.fullmatch(body[dot + 1 :]):
            raise SpfSyntaxError(f"domain-spec {text!r} does not end in a valid top label")
    return tokens


def parse_macro_string(text: str, *, letters: frozenset[str] = DOMAIN_MACRO_LETTERS) -> MacroString:
    return _tokenize(text, letters=letters, space_allowed=False)[0]


def parse_explanation(text: str) -> MacroString:
    """RFC 7208 §6.2: explain-string = *( macro-string / SP ), where c, r and t are allowed."""
    return _tokenize(text, letters=EXPLANATION_MACRO_LETTERS, space_allowed=True)[0]


def _tokenize(text: str, *, letters: frozenset[str], space_allowed: bool) -> tuple[MacroString, bool]:
    tokens: list[str | Macro] = []
    ends_with_macro = False
    literal = _EXPLAIN_LITERAL if space_allowed else _LITERAL
    for found in _MACRO_TOKEN.finditer(text):
        token = found.group()
        ends_with_macro = token.startswith("%")
        if token.startswith("%{"):
            tokens.append(_parse_macro(token[2:-1], letters))
        elif token in _MACRO_ESCAPES:
            _append_literal(tokens, _MACRO_ESCAPES[token])
        elif token.startswith("%"):
            # RFC 7208 §7.1: a '%' not followed by '{', '%', '_' or '-' is a syntax error.
            raise SpfSyntaxError(f"bad macro {token!r}")
        elif literal.fullmatch(token):
            _append_literal(tokens, token)
        else:
            raise SpfSyntaxError(f"character not allowed in {text!r}")
    return tuple(tokens), ends_with_macro


def _append_literal(tokens: list[str | Macro], text: str) -> None:
    if tokens and isinstance(tokens[-1], str):
        tokens[-1] += text
    else:
        tokens.append(text)


def _parse_macro(body: str, letters: frozenset[str]) -> Macro:
    match = _MACRO_BODY.fullmatch(body)
    if not match or match.group(1).lower() not in letters:
        raise SpfSyntaxError(f"bad macro %{{{body}}}")
    letter, digits, reverse, delimiters = match.groups()
    # RFC 7208 §7.3: a DIGIT transformer, when given, is nonzero.
    if digits and int(digits) == 0:
        raise SpfSyntaxError(f"macro %{{{body}}} keeps zero labels")
    return Macro(
        letter=letter.lower(),
        keep=int(digits) if digits else None,
        reverse=bool(reverse),
        delimiters=delimiters or ".",
        url_escape=letter.isupper(),
    )


def expand(macro_string: MacroString, values: Mapping[str, str]) -> str:
    """Fill in the macros from `values`, keyed by lower-case macro letter (RFC 7208 §7.3)."""
    return "".join(
        token if isinstance(token, str) else _expand_macro(token, values) for token in macro_string
    )


def _expand_macro(macro: Macro, values: Mapping[str, str]) -> str:
    # RFC 7208 §7.3: split on the delimiters, optionally reverse, keep the rightmost parts, join with dots.
    parts = re.split("[" + re.escape(macro.delimiters) + "]", values[macro.letter])
    if macro.reverse:
        parts.reverse()
    if macro.keep is not None:
        parts = parts[-macro.keep :]
    value = ".".join(parts)
    # RFC 7208 §7.3: upper-case letters are URL-escaped, leaving only the RFC 3986 unreserved set bare.
    return quote(value, safe="") if macro.url_escape else value


def uses_letter(macro_string: MacroString, letter: str) -> bool:
    return any(isinstance(token, Macro) and token.letter == letter for token in macro_string)


def query_name(name: str) -> str | None:
    """A name fit for a DNS query (RFC 1035 §2.3.4 label and name lengths), without its final dot."""
    name = name.removesuffix(".")
    labels = name.split(".")
    if len(name) > MAX_DOMAIN_LENGTH or not all(0 < len(label) <= 63 for label in labels):
        return None
    return name


def truncate_name(name: str) -> str:
    # RFC 7208 §7.3: drop labels from the left until the name fits in 253 characters.
    while len(name.removesuffix(".")) > MAX_DOMAIN_LENGTH and "." in name:
        name = name.partition(".")[2]
    return name
