"""RFC 5322 address lists and RFC 5321/6531 SMTP mailboxes and paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mail.address import (
    AddressError,
    ParsedAddress,
    canonical_address,
    domain_to_unicode,
    format_address_list,
    normalize_domain,
    parse_address,
    parse_address_list,
    parse_path,
)

GROUP_END = ParsedAddress(None, None, None, None)


@pytest.mark.parametrize(
    ("value", "addresses"),
    [
        ("jdoe@example.org", [ParsedAddress(None, None, "jdoe", "example.org")]),
        ("John Doe <jdoe@example.org>", [ParsedAddress("John Doe", None, "jdoe", "example.org")]),
        (
            '"Joe Q. Public" <john.q.public@example.com>',
            [ParsedAddress("Joe Q. Public", None, "john.q.public", "example.com")],
        ),
        ("Joe Q. Public <jqp@x.test>", [ParsedAddress("Joe Q. Public", None, "jqp", "x.test")]),
        (
            'Mary Smith <mary@x.test>, "Giant; \\"Big\\" Box" <sys@example.net>',
            [
                ParsedAddress("Mary Smith", None, "mary", "x.test"),
                ParsedAddress('Giant; "Big" Box', None, "sys", "example.net"),
            ],
        ),
        ("=?utf-8?q?J=C3=B6rg?= <j@x.test>", [ParsedAddress("=?utf-8?q?J=C3=B6rg?=", None, "j", "x.test")]),
        (
            "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
            [ParsedAddress("Pete", None, "pete", "silly.test")],
        ),
        ("undisclosed-recipients:;", [ParsedAddress(None, None, "undisclosed-recipients", None), GROUP_END]),
        # No display name: the last comment gives one, as Dovecot's ENVELOPE does.
        ("user@domain (Real Name)", [ParsedAddress("Real Name", None, "user", "domain")]),
        ("<u@d.test> (Real \\) Name)", [ParsedAddress("Real ) Name", None, "u", "d.test")]),
        (
            "a@x.test (A), b@x.test",
            [ParsedAddress("A", None, "a", "x.test"), ParsedAddress(None, None, "b", "x.test")],
        ),
        ("group2: (foo) ;", [ParsedAddress(None, None, "group2", None), GROUP_END]),
        (
            "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, after@x.test",
            [
                ParsedAddress(None, None, "A Group", None),
                ParsedAddress("Ed Jones", None, "c", "a.test"),
                ParsedAddress(None, None, "joe", "where.test"),
                ParsedAddress("John", None, "jdoe", "one.test"),
                GROUP_END,
                ParsedAddress(None, None, "after", "x.test"),
            ],
        ),
        (
            "<@route1.test,@route2.test:user@host.test>",
            [ParsedAddress(None, "@route1.test,@route2.test", "user", "host.test")],
        ),
        ('"quoted local"@x.test', [ParsedAddress(None, None, '"quoted local"', "x.test")]),
        ("john . smith @ example . com", [ParsedAddress(None, None, "john.smith", "example.com")]),
        ("user@[192.0.2.1]", [ParsedAddress(None, None, "user", "[192.0.2.1]")]),
        ("no-domain", [ParsedAddress(None, None, "no-domain", "")]),
        ("<>", [ParsedAddress(None, None, "", "")]),
        ("a@b.test,,  ,", [ParsedAddress(None, None, "a", "b.test")]),
        ("Unclosed <a@b.test", [ParsedAddress("Unclosed", None, "a", "b.test")]),
        (
            "Open group: a@b.test",
            [
                ParsedAddress(None, None, "Open group", None),
                ParsedAddress(None, None, "a", "b.test"),
                GROUP_END,
            ],
        ),
        ("", []),
    ],
)
def test_address_lists_are_parsed(value: str, addresses: list[ParsedAddress]) -> None:
    assert list(parse_address_list(value)) == addresses


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("jdoe@example.org", "jdoe@example.org"),
        ('"Joe Q. Public" <john.q.public@example.com> (Work)', "Joe Q. Public <john.q.public@example.com>"),
        ("john@example.com (John Smith)", "John Smith <john@example.com>"),  # the comment names it
        ("=?UTF-8?Q?J=C3=B6rg?= <j@example.com>", "Jörg <j@example.com>"),
        ("=?UTF-8?Q?Doe=2C_John?= <j@x.test>, k@x.test", "Doe, John <j@x.test>, k@x.test"),
        ('"Giant; \\"Big\\" Box" <sys@example.net>', 'Giant; "Big" Box <sys@example.net>'),
        ("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", "Pete <pete@silly.test>"),
        ("Mary\r\n  Smith <mary@x.test>", "Mary Smith <mary@x.test>"),
        ("undisclosed-recipients:;", "undisclosed-recipients:;"),
        (
            "A Group:Ed Jones <c@a.test>,joe@where.test;, after@x.test",
            "A Group: Ed Jones <c@a.test>, joe@where.test;, after@x.test",
        ),
        ("no-domain", "no-domain"),
        ("", ""),
    ],
)
def test_address_lists_are_written_out_as_a_reader_sees_them(value: str, written: str) -> None:
    # RFC 5322 §3.4 address lists with RFC 2047 §5 encoded words in display names.
    assert format_address_list(value) == written


@given(st.text(max_size=200))
def test_writing_out_any_address_list_never_raises(value: str) -> None:
    assert isinstance(format_address_list(value), str)


@given(st.text(max_size=200))
def test_address_list_parsing_never_raises(value: str) -> None:
    for address in parse_address_list(value):
        assert address.host is not None or address.name is None


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("user@example.com", ("user", "example.com")),
        ("first.last+tag@sub.example.com", ("first.last+tag", "sub.example.com")),
        ('"john doe"@example.com', ('"john doe"', "example.com")),
        ('"a\\"b@c"@example.com', ('"a\\"b@c"', "example.com")),
        ("user@[192.0.2.1]", ("user", "[192.0.2.1]")),
        ("user@[IPv6:2001:db8::1]", ("user", "[IPv6:2001:db8::1]")),
        ("用户@例子.广告", ("用户", "例子.广告")),
        ("jörg@bücher.example", ("jörg", "bücher.example")),
    ],
)
def test_valid_smtp_mailboxes_are_split(text: str, parts: tuple[str, str]) -> None:
    assert parse_address(text) == parts


@pytest.mark.parametrize(
    "text",
    [
        "no-at-sign",
        "@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "a b@example.com",
        "user@",
        "user@-bad.example",
        "user@bad-.example",
        "user@exa_mple.com",
        "user@example..com",
        "user@[300.1.1.1]",
        "user@[IPv6:zz::1]",
        "user@[192.0.2.1",
        "x" * 65 + "@example.com",
        "user@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".com",
        "bad\udcff@example.com",
    ],
)
def test_invalid_smtp_mailboxes_are_refused(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


@pytest.mark.parametrize(
    ("domain", "normal"),
    [
        ("Example.COM", "example.com"),
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("例子.广告", "xn--fsqu00a.xn--4rr70v"),
        ("[192.0.2.1]", "[192.0.2.1]"),
    ],
)
def test_domains_normalise_to_lower_case_a_labels_and_back(domain: str, normal: str) -> None:
    assert normalize_domain(domain) == normal
    assert normalize_domain(domain_to_unicode(normal)) == normal


def test_a_labels_convert_to_u_labels_and_bad_labels_stay() -> None:
    assert domain_to_unicode("xn--bcher-kva.example") == "bücher.example"
    assert domain_to_unicode("xn--ZZZZ.example") == "xn--ZZZZ.example"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("User@Example.COM", "User@example.com"),
        ('"user"@example.com', "user@example.com"),
        ('"john doe"@Example.com', '"john doe"@example.com'),
        ("jörg@Bücher.example", "jörg@xn--bcher-kva.example"),
    ],
)
def test_canonical_address_lower_cases_the_domain_only(text: str, canonical: str) -> None:
    assert canonical_address(text) == canonical


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("<>", None),
        ("<user@example.com>", ("user", "example.com")),
        ("<@relay.test,@other.test:user@example.com>", ("user", "example.com")),
    ],
)
def test_smtp_paths_are_parsed(text: str, result: tuple[str, str] | None) -> None:
    assert parse_path(text) == result


def test_postmaster_without_domain_is_accepted_only_when_allowed() -> None:
    assert parse_path("<Postmaster>", allow_postmaster=True) == ("Postmaster", "")
    with pytest.raises(AddressError):
        parse_path("<Postmaster>")


@pytest.mark.parametrize("text", ["user@example.com", "<user@example.com", "<" + "a" * 250 + "@b.com>"])
def test_malformed_paths_are_refused(text: str) -> None:
    with pytest.raises(AddressError):
        parse_path(text)


@given(st.text(max_size=100))
def test_smtp_address_parsing_raises_only_address_error(text: str) -> None:
    try:
        local, domain = parse_address(text)
    except AddressError:
        return
    assert f"{local}@{domain}" == text
