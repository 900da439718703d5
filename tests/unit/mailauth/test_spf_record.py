from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mailauth.spf_record import (
    Directive,
    Macro,
    SpfRecord,
    SpfSyntaxError,
    expand,
    is_spf_record,
    parse_domain_spec,
    parse_explanation,
    parse_spf_record,
)

# RFC 7208 §7.4: sender strong-bad@email.example.com, client 192.0.2.3.
RFC_VALUES = {
    "s": "strong-bad@email.example.com",
    "l": "strong-bad",
    "o": "email.example.com",
    "d": "email.example.com",
    "i": "192.0.2.3",
    "v": "in-addr",
    "h": "mx.example.org",
    "p": "unknown",
    "c": "192.0.2.3",
    "r": "checker.example.net",
    "t": "1700000000",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"v=spf1", True),
        (b"v=spf1 -all", True),
        (b"V=SpF1 mx", True),
        (b"v=spf10", False),
        (b"v=spf1mx", False),
        (b"spf1 -all", False),
        (b"", False),
    ],
)
def test_is_spf_record_needs_exact_version_then_space_or_end(text: bytes, expected: bool) -> None:
    assert is_spf_record(text) is expected


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("-all", Directive(qualifier="-", mechanism="all", text="-all")),
        ("ALL", Directive(qualifier="+", mechanism="all", text="ALL")),
        (
            "~ip4:192.0.2.0/24",
            Directive(
                qualifier="~",
                mechanism="ip4",
                text="~ip4:192.0.2.0/24",
                network=ipaddress.ip_network("192.0.2.0/24"),
            ),
        ),
        (
            "ip6:2001:DB8::/32",
            Directive(
                qualifier="+",
                mechanism="ip6",
                text="ip6:2001:DB8::/32",
                network=ipaddress.ip_network("2001:db8::/32"),
            ),
        ),
        ("a/24//64", Directive(qualifier="+", mechanism="a", text="a/24//64", cidr4=24, cidr6=64)),
        (
            "?mx:example.org//0",
            Directive(
                qualifier="?", mechanism="mx", text="?mx:example.org//0", domain=("example.org",), cidr6=0
            ),
        ),
        ("ptr", Directive(qualifier="+", mechanism="ptr", text="ptr")),
        (
            "include:_spf.%{d}",
            Directive(
                qualifier="+",
                mechanism="include",
                text="include:_spf.%{d}",
                domain=("_spf.", Macro(letter="d")),
            ),
        ),
        (
            "exists:%{ir}.bl.example.",
            Directive(
                qualifier="+",
                mechanism="exists",
                text="exists:%{ir}.bl.example.",
                domain=(Macro(letter="i", reverse=True), ".bl.example."),
            ),
        ),
    ],
)
def test_parse_directive_fields(term: str, expected: Directive) -> None:
    assert parse_spf_record(f"v=spf1 {term}").directives == (expected,)


def test_modifiers_are_kept_and_unknown_ones_ignored() -> None:
    record = parse_spf_record("v=spf1  mx  redirect=_spf.example.org exp=why.%{d} moo.cow=x:%{c} ")
    assert record == SpfRecord(
        directives=(Directive(qualifier="+", mechanism="mx", text="mx"),),
        redirect=("_spf.example.org",),
        explanation=("why.", Macro(letter="d")),
    )


@pytest.mark.parametrize(
    "record",
    [
        "v=spf10 -all",
        "v=spf1 -all moo",
        "v=spf1 -all.",
        "v=spf1 all:x",
        "v=spf1 a/33",
        "v=spf1 a//129",
        "v=spf1 a/024",
        "v=spf1 a/24/64",
        "v=spf1 a:",
        "v=spf1 a:museum",
        "v=spf1 a:abc.123",
        "v=spf1 a:example.-com",
        "v=spf1 a:example.com:8080",
        "v=spf1 a:foo.example.com\0",
        "v=spf1 a:foo.example.com\tptr",
        "v=spf1 include",
        "v=spf1 include:example.com/24",
        "v=spf1 exists",
        "v=spf1 ptr/0",
        "v=spf1 ip4",
        "v=spf1 ip4:1.2.3",
        "v=spf1 ip4:01.2.3.4",
        "v=spf1 ip4:1.2.3.4:25",
        "v=spf1 ip4:1.2.3.4//32",
        "v=spf1 ip4:2001:db8::1",
        "v=spf1 ip6::CAFE::BABE",
        "v=spf1 ip6:1.2.3.4",
        "v=spf1 ip6:fe80::1%eth0",
        "v=spf1 redirect:example.com",
        "v=spf1 redirect=",
        "v=spf1 redirect=a.example redirect=b.example",
        "v=spf1 exp=a.example exp=b.example",
        "v=spf1 exp=-all",
        "v=spf1 1up=foo",
        "v=spf1 =all",
        "v=spf1 foo=%abc",
        "v=spf1 exists:%(ir).example.com",
        "v=spf1 exists:foo%.example.com",
        "v=spf1 exists:%{a}.example.com",
        "v=spf1 exists:%{r}.example.com",
        "v=spf1 exists:%{d0}.example.com",
        "v=spf1 exists:%{d",
        "v=spf1 a:caf\u00e9.example.com",
    ],
)
def test_parse_rejects_grammar_violations(record: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_spf_record(record)


@pytest.mark.parametrize(
    "spec",
    [
        "example.com",
        "example.com.",
        "foo:bar/baz.example.com",
        "a.xn--zckzah",
        "%{d}",
        "x.%{d2}",
        "foo%%",
        "%-",
    ],
)
def test_domain_spec_ends_in_top_label_or_macro(spec: str) -> None:
    assert parse_domain_spec(spec)


@pytest.mark.parametrize(
    ("spec", "expanded"),
    [
        # RFC 7208 §7.4 examples.
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        # §7.1 escapes and §7.3 URL escaping of upper-case letters.
        ("a%%b%_c%-d.example.com", "a%b c%20d.example.com"),
        ("%{S}", "strong-bad%40email.example.com"),
        ("%{D2R}", "example.email"),
        ("%{l99}", "strong-bad"),
        ("%{d2.-}", "example.com"),
        ("%{d2+-}", "email.example.com"),
    ],
)
def test_macro_expansion_matches_rfc_examples(spec: str, expanded: str) -> None:
    assert expand(parse_domain_spec(spec), RFC_VALUES) == expanded


def test_explanation_allows_spaces_and_c_r_t() -> None:
    tokens = parse_explanation("%{c} is not one of %{d}'s senders (checked by %{r} at %{t})")
    assert expand(tokens, RFC_VALUES) == (
        "192.0.2.3 is not one of email.example.com's senders (checked by checker.example.net at 1700000000)"
    )


@pytest.mark.parametrize("text", ["The %{x}-files.", "100% sure", "tab\there", "\u00efExplanation"])
def test_explanation_syntax_errors_are_reported(text: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_explanation(text)


@given(st.text())
def test_parse_raises_only_syntax_error_for_any_text(text: str) -> None:
    for candidate in (text, "v=spf1 " + text):
        with contextlib.suppress(SpfSyntaxError):
            parse_spf_record(candidate)


@given(st.binary())
def test_parse_raises_only_syntax_error_for_any_record_bytes(data: bytes) -> None:
    with contextlib.suppress(SpfSyntaxError):
        parse_spf_record("v=spf1 " + data.decode("latin-1"))


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_any_parsed_macro_string_expands(text: str) -> None:
    try:
        tokens = parse_explanation(text)
    except SpfSyntaxError:
        return
    assert isinstance(expand(tokens, RFC_VALUES), str)
