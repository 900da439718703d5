from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mail.headers import parse_header_fields
from kittiwake.mailauth.results import (
    MethodResult,
    arc_result,
    build_authentication_results,
    dkim_result,
    dmarc_result,
    find_forged_results,
    has_field,
    header_length,
    remove_our_results,
    spf_result,
)


def test_full_header_is_one_result_per_line_with_crlf() -> None:
    header = build_authentication_results(
        "mx.example.net",
        [
            spf_result("pass", "alice@example.org"),
            dkim_result("pass", domain="example.org", selector="s2026", signature_prefix="AbCdEfGhIjKl"),
            dkim_result("fail", domain="lists.example", selector="k1", signature_prefix="ZyXwVuTs"),
            dmarc_result("pass", header_from="example.org", policy="reject", disposition="none"),
            arc_result("pass"),
        ],
    )
    assert header == (
        b"Authentication-Results: mx.example.net;\r\n"
        b"\tspf=pass smtp.mailfrom=alice@example.org;\r\n"
        b"\tdkim=pass header.d=example.org header.s=s2026 header.b=AbCdEfGh;\r\n"
        b"\tdkim=fail header.d=lists.example header.s=k1 header.b=ZyXwVuTs;\r\n"
        b"\tdmarc=pass (p=reject dis=none) header.from=example.org;\r\n"
        b"\tarc=pass\r\n"
    )


def test_no_results_says_none() -> None:
    assert (
        build_authentication_results("mx.example.net", [])
        == b"Authentication-Results: mx.example.net; none\r\n"
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (spf_result("softfail", "bounce+x=y@example.org"), b"spf=softfail smtp.mailfrom=bounce+x=y@example.org"),
        (spf_result("pass", "mail.example.org", helo=True), b"spf=pass smtp.helo=mail.example.org"),
        (spf_result("none", "@example.org"), b"spf=none smtp.mailfrom=@example.org"),
        (dkim_result("pass", domain="d.example", selector="s", signature_prefix="ab/cd+ef"), b'header.b="ab/cd+ef"'),
        (dmarc_result("fail", header_from="d.example", policy="quarantine", disposition="none"),
         b"(p=quarantine dis=none)"),
        (dmarc_result("none", header_from="d.example"), b"dmarc=none header.from=d.example"),
        (dmarc_result("permerror", header_from="", disposition="reject"), b"dmarc=permerror (dis=reject)\r\n"),
        (arc_result("pass", oldest_pass=2, remote_ip="192.0.2.7"), b"smtp.remote-ip=192.0.2.7 header.oldest-pass=2"),
        (MethodResult(method="x", result="pass", comment="a (b) \\c\r\n"), b"x=pass (a b c)"),
        (MethodResult(method="x", result="pass", properties=(("p.q", 'a "b"'),)), b'p.q="a \\"b\\""'),
    ],
)  # fmt: skip
def test_method_result_is_rendered_as_rfc8601_resinfo(result: MethodResult, expected: bytes) -> None:
    assert expected in build_authentication_results("mx.example.net", [result])


def test_authserv_id_that_is_not_a_token_is_quoted() -> None:
    header = build_authentication_results("mx example", [])
    assert header.startswith(b'Authentication-Results: "mx example"; none')


def test_long_result_folds_between_words_under_78_columns() -> None:
    local = "a" * 20
    header = build_authentication_results(
        "mx.example.net",
        [
            dkim_result("pass", domain="a-rather-long-subdomain.of.example.org", selector="selector-2026-11",
                        signature_prefix="abcdefgh"),
            spf_result("pass", f"{local}@a-rather-long-subdomain.of.example.org"),
        ],
    )  # fmt: skip
    lines = header.split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith(b"\t") for line in lines[1:-1])
    assert b"\theader.s=selector-2026-11 header.b=abcdefgh;\r\n" in header
    assert b"\tspf=pass\r\n\tsmtp.mailfrom=" in header


def test_word_longer_than_a_line_stays_whole() -> None:
    address = "a" * 80 + "@example.org"
    header = build_authentication_results("mx.example.net", [spf_result("pass", address)])
    assert f"\tsmtp.mailfrom={address}\r\n".encode() in header


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@given(
    st.lists(st.tuples(st.sampled_from(["spf", "dkim", "dmarc", "arc"]), _TEXT, _TEXT), max_size=6),
    st.from_regex(r"[a-z][a-z0-9.-]{0,30}", fullmatch=True),
)
def test_built_header_is_found_again_as_ours(entries: list[tuple[str, str, str]], authserv_id: str) -> None:
    results = [
        MethodResult(method=m, result="pass", comment=c, properties=(("p.v", v),)) for m, c, v in entries
    ]
    header = build_authentication_results(authserv_id, results)
    assert header.endswith(b"\r\n")
    assert b"\n" not in header.replace(b"\r\n", b"")
    assert find_forged_results(header + b"\r\nbody", authserv_id.upper()) == [(0, len(header))]


BLOCK = (
    b"Received: from a.example by b.example; Sun, 22 Nov 2026 04:30:00 +0000\r\n"
    b"Authentication-Results: MX.Example.NET; spf=pass smtp.mailfrom=x@y.example\r\n"
    b"Authentication-Results: other.example;\r\n"
    b"\tdkim=pass header.d=y.example\r\n"
    b"authentication-results : (our border) mx.example.net;\r\n"
    b" dkim=pass header.d=evil.example\r\n"
    b'Authentication-Results: "mx.example.net" ; none\r\n'
    b"Authentication-Results: mx.example.net.evil.example; none\r\n"
    b"Subject: hello\r\n"
    b"\r\n"
    b"Authentication-Results: mx.example.net; body text, not a field\r\n"
)


def test_find_forged_results_gives_byte_ranges_of_our_fields_only() -> None:
    spans = find_forged_results(BLOCK, "mx.example.net")
    assert [BLOCK[start:end] for start, end in spans] == [
        b"Authentication-Results: MX.Example.NET; spf=pass smtp.mailfrom=x@y.example\r\n",
        b"authentication-results : (our border) mx.example.net;\r\n dkim=pass header.d=evil.example\r\n",
        b'Authentication-Results: "mx.example.net" ; none\r\n',
    ]


def test_remove_our_results_keeps_other_fields_and_the_body() -> None:
    assert remove_our_results(BLOCK, "MX.EXAMPLE.NET") == (
        b"Received: from a.example by b.example; Sun, 22 Nov 2026 04:30:00 +0000\r\n"
        b"Authentication-Results: other.example;\r\n"
        b"\tdkim=pass header.d=y.example\r\n"
        b"Authentication-Results: mx.example.net.evil.example; none\r\n"
        b"Subject: hello\r\n"
        b"\r\n"
        b"Authentication-Results: mx.example.net; body text, not a field\r\n"
    )


@pytest.mark.parametrize(
    "block",
    [
        b"",
        b"Subject: x\r\n",
        b"Authentication-Results: other.example; none\n\nAuthentication-Results: mx.example.net; none\n",
        b"Authentication-Results:\r\n",
        b"Authentication-Results: (unclosed comment mx.example.net\r\n",
    ],
)
def test_block_without_our_fields_is_returned_unchanged(block: bytes) -> None:
    assert find_forged_results(block, "mx.example.net") == []
    assert remove_our_results(block, "mx.example.net") == block


def test_bare_lf_header_last_field_without_newline_is_found() -> None:
    block = b"Subject: x\nAuthentication-Results: mx.example.net; none"
    assert remove_our_results(block, "mx.example.net") == b"Subject: x\n"


@given(st.lists(st.sampled_from([b"Authentication-Results: ", b"mx.example.net", b";", b" ", b"\t", b"\r\n",
                                 b"\n", b"(", b")", b'"', b"\\", b"X: y", b"\xff"]) | st.binary(max_size=8),
                max_size=30))  # fmt: skip
def test_arbitrary_bytes_give_ordered_spans_and_removal_matches_them(pieces: list[bytes]) -> None:
    block = b"".join(pieces)
    spans = find_forged_results(block, "mx.example.net")
    assert all(0 <= start < end <= len(block) for start, end in spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    removed = remove_our_results(block, "mx.example.net")
    assert len(removed) == len(block) - sum(end - start for start, end in spans)


def test_values_are_quoted_or_not_each_on_its_own_text() -> None:
    values = {"example.org": "example.org", "a b": '"a b"', "x@y.example": "x@y.example", 'q"': '"q\\""'}
    for _ in range(2):
        for value, rendered in values.items():
            header = build_authentication_results("mx.example.net", [spf_result("pass", value)])
            assert f"smtp.mailfrom={rendered}\r\n".encode() in header


@pytest.mark.parametrize(
    "block",
    [
        b"AUTHENTICATION-RESULTS: mx.example.net; none\r\nSubject: x\r\n\r\n",
        b"Subject: x\r\nauthentication-RESULTS: mx.example.net; none\r\n\r\n",
        b"Subject: x\nAuthentication-Results\t: mx.example.net; none\n\nbody\n",
    ],
)
def test_our_field_is_found_whatever_the_case_of_its_name(block: bytes) -> None:
    assert len(find_forged_results(block, "mx.example.net")) == 1


@pytest.mark.parametrize(
    "block",
    [
        b"Subject: x\r\n\r\nAuthentication-Results: mx.example.net; none\r\n",
        b"Subject: x\n\nAuthentication-Results: mx.example.net; none\n",
        b"\r\nAuthentication-Results: mx.example.net; none\r\n",
        b"Subject: x\r\n Authentication-Results: mx.example.net; none\r\n\r\n",
        b"X-Authentication-Results: mx.example.net; none\r\n\r\n",
    ],
)
def test_name_in_the_body_or_inside_another_field_is_no_field(block: bytes) -> None:
    assert not has_field(block, b"authentication-results")
    assert find_forged_results(block, "mx.example.net") == []


_HEADER_PIECES = st.lists(
    st.sampled_from([b"Authentication-Results: ", b"ARC-Seal: ", b"arc-seal:", b"X: y", b"\r\n", b"\n", b"\r",
                     b" ", b"\t", b":", b"\xff"]) | st.binary(max_size=8),
    max_size=30,
)  # fmt: skip


@given(_HEADER_PIECES)
def test_header_length_is_where_header_parsing_stops(pieces: list[bytes]) -> None:
    block = b"".join(pieces)
    length = header_length(block)
    assert parse_header_fields(block[:length]) == parse_header_fields(block)
    # Short of the whole block, the header stops just before an empty line.
    assert length == len(block) or block[length:].startswith((b"\n", b"\r\n"))


@given(_HEADER_PIECES, st.sampled_from([b"arc-", b"authentication-results"]))
def test_has_field_never_misses_a_field_that_parsing_finds(pieces: list[bytes], prefix: bytes) -> None:
    block = b"".join(pieces)
    if any(name.lower().encode().startswith(prefix) for name, _value in parse_header_fields(block)):
        assert has_field(block, prefix)
