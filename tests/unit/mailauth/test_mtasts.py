from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fakes import FakeResolver

from kittiwake.mailauth.mtasts import (
    MAX_AGE_LIMIT,
    HttpsPolicyFetcher,
    MxSelection,
    PolicyFetchError,
    StsPolicy,
    StsPolicyCache,
    StsSyntaxError,
    filter_mx,
    mx_matches,
    mx_mismatches,
    parse_policy,
    parse_sts_txt,
    read_policy_response,
)

POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n"


class FakeFetcher:
    """Policy bodies by domain; a domain mapped to an exception raises it. Counts the fetches."""

    def __init__(self, bodies: dict[str, bytes | Exception]) -> None:
        self.bodies = bodies
        self.fetched: list[str] = []

    async def fetch(self, domain: str) -> bytes:
        self.fetched.append(domain)
        body = self.bodies.get(domain, PolicyFetchError("404"))
        if isinstance(body, Exception):
            raise body
        return body


def policy(mode: str = "enforce", *mx: str, max_age: int = 86400) -> bytes:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}"]
    return ("\r\n".join(lines) + "\r\n").encode()


# --- TXT record (RFC 8461 §3.1) ---


@pytest.mark.parametrize(
    ("record", "expected_id"),
    [
        (b"v=STSv1; id=20160831085700Z;", "20160831085700Z"),
        (b"v=STSv1; id=abc", "abc"),
        (b"v=STSv1;id=abc;", "abc"),
        (b"v=STSv1 ;\tid=abc ; ", "abc"),
        (b"v=STSv1; id=first; id=second", "first"),
        (b"v=STSv1; ext-1.x=value; id=abc", "abc"),
        ("v=STSv1; id=" + "a" * 32, "a" * 32),
    ],
)
def test_sts_txt_record_yields_its_id(record: bytes | str, expected_id: str) -> None:
    assert parse_sts_txt(record).id == expected_id


def test_sts_txt_record_keeps_extension_fields_in_order() -> None:
    record = parse_sts_txt(b"v=STSv1; a=1; id=x; b=2")
    assert record.extensions == (("a", "1"), ("b", "2"))


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"v=STSv1",
        b"v=STSv1;",
        b"v=STSv1; id=",
        b"v=STSv2; id=abc",
        b"v=stsv1; id=abc",
        b"V=STSv1; id=abc",
        b"v=STSv1x; id=abc",
        b"v=STSv1; id=abc;;",
        b"v=STSv1; id=ab-c",
        b"v=STSv1; id=" + b"a" * 33,
        b"v=STSv1; ext=1",
        b"v=STSv1; id abc",
        b"v=STSv1; id=abc; ext=a=b",
        b"v=STSv1; id=abc; ext=",
        b"v=STSv1; id=abc; _ext=1",
        b"id=abc; v=STSv1",
        b"v=STSv1; id=abc\xff",
    ],
)
def test_malformed_sts_txt_record_is_rejected(record: bytes) -> None:
    with pytest.raises(StsSyntaxError):
        parse_sts_txt(record)


@given(st.binary(max_size=80))
def test_sts_txt_parser_raises_only_syntax_errors(data: bytes) -> None:
    with contextlib.suppress(StsSyntaxError):
        parse_sts_txt(data)


@given(st.text(alphabet="v=STSv1;id abc-_.\t", max_size=40))
def test_sts_txt_parser_on_near_valid_text_raises_only_syntax_errors(text: str) -> None:
    with contextlib.suppress(StsSyntaxError):
        parse_sts_txt(text)


# --- Policy file (RFC 8461 §3.2) ---


def test_policy_with_crlf_line_ends_is_parsed() -> None:
    assert parse_policy(POLICY) == StsPolicy(
        version="STSv1", mode="enforce", mx=("mail.example.com", "*.example.net"), max_age=86400
    )


def test_policy_with_lf_line_ends_parses_as_with_crlf() -> None:
    assert parse_policy(POLICY.replace(b"\r\n", b"\n")) == parse_policy(POLICY)


def test_policy_without_final_line_end_parses_as_with_it() -> None:
    assert parse_policy(POLICY.removesuffix(b"\r\n")) == parse_policy(POLICY)


def test_policy_given_as_text_parses_as_bytes() -> None:
    assert parse_policy(POLICY.decode()) == parse_policy(POLICY)


def test_policy_fields_may_come_in_any_order_with_blanks_around_values() -> None:
    text = b"max_age:86400  \nmx:\tMail.Example.COM\nmode:   testing\nversion: STSv1\n"
    parsed = parse_policy(text)
    assert (parsed.mode, parsed.mx, parsed.max_age) == ("testing", ("mail.example.com",), 86400)


def test_policy_unknown_fields_are_kept_as_extensions() -> None:
    parsed = parse_policy(POLICY + b"x-future: some value \xc3\xa9\r\nnote.1: a  b\r\n")
    assert parsed.extensions == (("x-future", "some value é"), ("note.1", "a  b"))
    assert parsed.mode == "enforce"


def test_policy_repeated_field_keeps_first_occurrence() -> None:
    parsed = parse_policy(POLICY + b"mode: testing\r\nmax_age: 5\r\n")
    assert (parsed.mode, parsed.max_age) == ("enforce", 86400)


def test_policy_max_age_is_capped_at_one_year() -> None:
    assert parse_policy(policy("enforce", "mx.example", max_age=9_999_999_999)).max_age == MAX_AGE_LIMIT


def test_policy_in_mode_none_needs_no_mx() -> None:
    assert parse_policy(policy("none")) == StsPolicy(version="STSv1", mode="none", mx=(), max_age=86400)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(policy("enforce"), id="enforce-without-mx"),
        pytest.param(policy("testing"), id="testing-without-mx"),
        pytest.param(policy("Enforce", "mx.example"), id="mode-case"),
        pytest.param(policy("strict", "mx.example"), id="unknown-mode"),
        pytest.param(policy("", "mx.example"), id="empty-mode"),
        pytest.param(POLICY.replace(b"STSv1", b"STSv2"), id="bad-version"),
        pytest.param(POLICY.replace(b"version: STSv1\r\n", b""), id="missing-version"),
        pytest.param(POLICY.replace(b"mode: enforce\r\n", b""), id="missing-mode"),
        pytest.param(POLICY.replace(b"max_age: 86400\r\n", b""), id="missing-max-age"),
        pytest.param(POLICY.replace(b"86400", b"-1"), id="negative-max-age"),
        pytest.param(POLICY.replace(b"86400", b"12345678901"), id="max-age-11-digits"),
        pytest.param(POLICY.replace(b"86400", b"1 day"), id="max-age-words"),
        pytest.param(POLICY.replace(b"mail.example.com", b"mail.example.com."), id="mx-final-dot"),
        pytest.param(POLICY.replace(b"mail.example.com", b"*mail.example.com"), id="mx-partial-wildcard"),
        pytest.param(POLICY.replace(b"mail.example.com", b"mail.*.com"), id="mx-inner-wildcard"),
        pytest.param(POLICY.replace(b"mail.example.com", b"-mail.example.com"), id="mx-leading-hyphen"),
        pytest.param(POLICY.replace(b"mail.example.com", "bücher.example".encode()), id="mx-u-label"),
        pytest.param(POLICY.replace(b"\r\nmode", b"\r\n\r\nmode"), id="blank-line"),
        pytest.param(POLICY + b"\r\n", id="two-final-line-ends"),
        pytest.param(POLICY.replace(b"mode: ", b"mode : "), id="blank-before-colon"),
        pytest.param(POLICY.replace(b"mode:", b"mode="), id="equals-instead-of-colon"),
        pytest.param(POLICY + b"x-ext:\r\n", id="empty-extension-value"),
        pytest.param(POLICY + b"x-ext: a\rb\r\n", id="bare-cr-in-value"),
        pytest.param(POLICY + b"\xff: x\r\n", id="not-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_invalid_policy_is_rejected(text: bytes) -> None:
    with pytest.raises(StsSyntaxError):
        parse_policy(text)


@given(st.binary(max_size=200))
def test_policy_parser_raises_only_syntax_errors(data: bytes) -> None:
    with contextlib.suppress(StsSyntaxError):
        parse_policy(data)


@given(st.lists(st.sampled_from(["version: STSv1", "mode: enforce", "mx: *.a.b", "max_age: 9", "x: y", ""])))
def test_policy_parser_on_shuffled_fields_raises_only_syntax_errors(lines: list[str]) -> None:
    try:
        parsed = parse_policy("\n".join(lines))
    except StsSyntaxError:
        return
    assert parsed.version == "STSv1"


def test_policy_parser_handles_a_long_line_of_blanks_quickly() -> None:
    with pytest.raises(StsSyntaxError):
        parse_policy(b"x: a" + b" " * 60000 + b"b" + b" \t" * 3000 + b"\x01")


# --- MX matching (RFC 8461 §4.1) ---


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "MAIL.Example.Com.", True),
        ("mail.example.com", "mail2.example.com", False),
        ("mail.example.com", "example.com", False),
        ("*.example.com", "mail.example.com", True),
        ("*.example.com", "Mail.EXAMPLE.com.", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", ".example.com", False),
        ("*.example.com", "mail.example.com.evil", False),
        ("*.example.com", "mailexample.com", False),
        ("*.Example.COM", "mx.example.com", True),
    ],
)
def test_mx_pattern_matching(pattern: str, host: str, expected: bool) -> None:
    assert mx_matches(pattern, host) is expected


HOSTS = ("mail.example.com", "mx1.example.net", "backup.other.org")


def test_enforce_policy_allows_only_matching_hosts_and_requires_verified_tls() -> None:
    assert filter_mx(parse_policy(POLICY), HOSTS) == MxSelection(
        allowed=("mail.example.com", "mx1.example.net"), verify_tls=True
    )


def test_enforce_policy_matching_no_host_allows_none() -> None:
    assert filter_mx(parse_policy(POLICY), ["mx.elsewhere.org"]) == MxSelection(allowed=(), verify_tls=True)


@pytest.mark.parametrize("text", [policy("testing", "mail.example.com"), policy("none")])
def test_testing_and_none_policies_allow_every_host_without_required_verification(text: bytes) -> None:
    assert filter_mx(parse_policy(text), HOSTS) == MxSelection(allowed=HOSTS, verify_tls=False)


def test_no_policy_allows_every_host() -> None:
    assert filter_mx(None, HOSTS) == MxSelection(allowed=HOSTS, verify_tls=False)


def test_mismatches_name_the_hosts_to_report_under_testing() -> None:
    assert mx_mismatches(parse_policy(policy("testing", "*.example.com")), HOSTS) == HOSTS[1:]


@pytest.mark.parametrize("text", [policy("none"), None])
def test_no_mismatches_without_an_active_policy(text: bytes | None) -> None:
    assert mx_mismatches(None if text is None else parse_policy(text), HOSTS) == ()


# --- Policy discovery and cache (RFC 8461 §3.3, §5.1) ---

DOMAIN = "example.com"
TXT_NAME = "_mta-sts.example.com"


def make_resolver(*records: bytes) -> FakeResolver:
    return FakeResolver(txt_records={TXT_NAME: list(records)})


async def test_policy_is_fetched_when_txt_record_exists() -> None:
    fetcher = FakeFetcher({DOMAIN: POLICY})
    got = await StsPolicyCache().get_policy(DOMAIN, make_resolver(b"v=STSv1; id=1"), fetcher, 1000.0)
    assert got == parse_policy(POLICY)
    assert fetcher.fetched == [DOMAIN]


async def test_domain_without_txt_record_has_no_policy_and_is_not_fetched() -> None:
    fetcher = FakeFetcher({DOMAIN: POLICY})
    assert await StsPolicyCache().get_policy(DOMAIN, FakeResolver(), fetcher, 1000.0) is None
    assert fetcher.fetched == []


async def test_unchanged_id_uses_cached_policy_without_fetching() -> None:
    cache, resolver, fetcher = (
        StsPolicyCache(),
        make_resolver(b"v=STSv1; id=1"),
        FakeFetcher({DOMAIN: POLICY}),
    )
    await cache.get_policy(DOMAIN, resolver, fetcher, 1000.0)
    fetcher.bodies[DOMAIN] = policy("testing", "other.example")
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 2000.0) == parse_policy(POLICY)
    assert fetcher.fetched == [DOMAIN]


async def test_changed_id_refreshes_the_policy() -> None:
    cache, resolver, fetcher = (
        StsPolicyCache(),
        make_resolver(b"v=STSv1; id=1"),
        FakeFetcher({DOMAIN: POLICY}),
    )
    await cache.get_policy(DOMAIN, resolver, fetcher, 1000.0)
    resolver.txt_records[TXT_NAME] = [b"v=STSv1; id=2"]
    fetcher.bodies[DOMAIN] = newer = policy("testing", "other.example")
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 1001.0) == parse_policy(newer)
    assert fetcher.fetched == [DOMAIN, DOMAIN]


async def test_expired_policy_is_fetched_again_even_with_same_id() -> None:
    cache, resolver = StsPolicyCache(), make_resolver(b"v=STSv1; id=1")
    fetcher = FakeFetcher({DOMAIN: policy("enforce", "mx.example.com", max_age=100)})
    await cache.get_policy(DOMAIN, resolver, fetcher, 1000.0)
    await cache.get_policy(DOMAIN, resolver, fetcher, 1099.0)
    await cache.get_policy(DOMAIN, resolver, fetcher, 1100.0)
    assert fetcher.fetched == [DOMAIN, DOMAIN]


async def test_fetch_failure_after_id_change_keeps_unexpired_cached_policy() -> None:
    cache, resolver, fetcher = (
        StsPolicyCache(),
        make_resolver(b"v=STSv1; id=1"),
        FakeFetcher({DOMAIN: POLICY}),
    )
    await cache.get_policy(DOMAIN, resolver, fetcher, 1000.0)
    resolver.txt_records[TXT_NAME] = [b"v=STSv1; id=2"]
    fetcher.bodies[DOMAIN] = PolicyFetchError("connection refused")
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 2000.0) == parse_policy(POLICY)


async def test_invalid_fetched_policy_counts_as_fetch_failure() -> None:
    cache, resolver, fetcher = (
        StsPolicyCache(),
        make_resolver(b"v=STSv1; id=1"),
        FakeFetcher({DOMAIN: POLICY}),
    )
    await cache.get_policy(DOMAIN, resolver, fetcher, 1000.0)
    resolver.txt_records[TXT_NAME] = [b"v=STSv1; id=2"]
    fetcher.bodies[DOMAIN] = b"<html>not found</html>"
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 2000.0) == parse_policy(POLICY)


async def test_fetch_failure_without_cached_policy_means_no_policy() -> None:
    fetcher = FakeFetcher({DOMAIN: PolicyFetchError("timeout")})
    assert await StsPolicyCache().get_policy(DOMAIN, make_resolver(b"v=STSv1; id=1"), fetcher, 1.0) is None


async def test_fetch_failure_after_expiry_means_no_policy() -> None:
    cache, resolver = StsPolicyCache(), make_resolver(b"v=STSv1; id=1")
    fetcher = FakeFetcher({DOMAIN: policy("enforce", "mx.example.com", max_age=100)})
    await cache.get_policy(DOMAIN, resolver, fetcher, 1000.0)
    fetcher.bodies[DOMAIN] = PolicyFetchError("timeout")
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 1100.0) is None


async def test_failed_fetch_is_not_retried_within_the_retry_interval() -> None:
    cache, resolver = StsPolicyCache(retry_interval=300.0), make_resolver(b"v=STSv1; id=1")
    fetcher = FakeFetcher({DOMAIN: PolicyFetchError("timeout")})
    await cache.get_policy(DOMAIN, resolver, fetcher, 1000.0)
    fetcher.bodies[DOMAIN] = POLICY
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 1299.0) is None
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 1300.0) == parse_policy(POLICY)
    assert fetcher.fetched == [DOMAIN, DOMAIN]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"txt_records": {}}, id="txt-record-removed"),
        pytest.param({"failing": {TXT_NAME}}, id="dns-failure"),
        pytest.param({"missing": {TXT_NAME}}, id="nxdomain"),
        pytest.param({"txt_records": {TXT_NAME: [b"v=STSv1; id=2", b"v=STSv1; id=3"]}}, id="two-records"),
        pytest.param({"txt_records": {TXT_NAME: [b"v=STSv1; id=bad-id"]}}, id="invalid-record"),
    ],
)
async def test_cached_policy_applies_while_no_live_policy_is_discovered(change: dict[str, object]) -> None:
    cache, fetcher = StsPolicyCache(), FakeFetcher({DOMAIN: POLICY})
    await cache.get_policy(DOMAIN, make_resolver(b"v=STSv1; id=1"), fetcher, 1000.0)
    resolver = FakeResolver(**change)  # type: ignore[arg-type]
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 2000.0) == parse_policy(POLICY)
    assert fetcher.fetched == [DOMAIN]


async def test_txt_records_not_starting_with_version_are_ignored() -> None:
    resolver = make_resolver(b"v=spf1 -all", b"v=STSv1; id=1", b"v=STSv2; id=2")
    got = await StsPolicyCache().get_policy(DOMAIN, resolver, FakeFetcher({DOMAIN: POLICY}), 1.0)
    assert got == parse_policy(POLICY)


async def test_two_sts_txt_records_mean_no_policy() -> None:
    resolver = make_resolver(b"v=STSv1; id=1", b"v=STSv1; id=2")
    fetcher = FakeFetcher({DOMAIN: POLICY})
    assert await StsPolicyCache().get_policy(DOMAIN, resolver, fetcher, 1.0) is None
    assert fetcher.fetched == []


async def test_domain_is_looked_up_and_fetched_in_lower_case_a_labels() -> None:
    resolver = FakeResolver(txt_records={"_mta-sts.xn--bcher-kva.example": [b"v=STSv1; id=1"]})
    fetcher = FakeFetcher({"xn--bcher-kva.example": POLICY})
    assert await StsPolicyCache().get_policy("Bücher.Example.", resolver, fetcher, 1.0) is not None
    assert fetcher.fetched == ["xn--bcher-kva.example"]


@pytest.mark.parametrize("domain", ["[192.0.2.1]", "bad domain", ""])
async def test_address_literal_or_invalid_domain_has_no_policy(domain: str) -> None:
    resolver = FakeResolver()
    assert await StsPolicyCache().get_policy(domain, resolver, FakeFetcher({}), 1.0) is None
    assert resolver.queries == []


async def test_policies_are_cached_per_domain() -> None:
    cache = StsPolicyCache()
    resolver = FakeResolver(
        txt_records={TXT_NAME: [b"v=STSv1; id=1"], "_mta-sts.example.org": [b"v=STSv1; id=1"]}
    )
    other = policy("testing", "mx.example.org")
    fetcher = FakeFetcher({DOMAIN: POLICY, "example.org": other})
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 1.0) == parse_policy(POLICY)
    assert await cache.get_policy("example.org", resolver, fetcher, 1.0) == parse_policy(other)
    assert await cache.get_policy(DOMAIN, resolver, fetcher, 2.0) == parse_policy(POLICY)
    assert fetcher.fetched == [DOMAIN, "example.org"]


# --- HTTP response of the policy fetch (RFC 8461 §3.3) ---


OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"


async def read(response: bytes, max_size: int = 65536) -> bytes:
    reader = asyncio.StreamReader()
    reader.feed_data(response)
    reader.feed_eof()
    return await read_policy_response(reader, max_size)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(OK + b"Content-Length: 5\r\n\r\nhelloXX", id="length"),
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-type: Text/Plain; charset=utf-8\r\n\r\nhello", id="to-eof"),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\n\r\n",
            id="chunked",
        ),
        pytest.param(b"HTTP/1.0 200 OK\nContent-Type: text/plain\n\nhello", id="lf-only"),
    ],
)
async def test_policy_response_body_is_read(response: bytes) -> None:
    assert await read(response) == b"hello"


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(
            b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Type: text/plain\r\n\r\n", id="redirect"
        ),
        pytest.param(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno", id="not-found"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nhello", id="html"),
        pytest.param(b"HTTP/1.1 200 OK\r\n\r\nhello", id="no-media-type"),
        pytest.param(b"SSH-2.0-OpenSSH\r\n", id="not-http"),
        pytest.param(b"", id="empty"),
        pytest.param(OK, id="headers-cut-short"),
        pytest.param(
            OK + b"Content-Length: 9\r\n\r\nhello",
            id="body-cut-short",
        ),
        pytest.param(OK + b"Content-Length: -1\r\n\r\nhello", id="bad-length"),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="bad-chunk",
        ),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX",
            id="chunk-end",
        ),
    ],
)
async def test_unacceptable_policy_response_is_a_fetch_error(response: bytes) -> None:
    with pytest.raises(PolicyFetchError):
        await read(response)


@pytest.mark.parametrize(
    "response",
    [
        OK + b"Content-Length: 11\r\n\r\n" + b"x" * 11,
        OK + b"\r\n" + b"x" * 11,
        OK + b"Transfer-Encoding: chunked\r\n\r\n" + b"6\r\nxxxxxx\r\n5\r\nxxxxx\r\n0\r\n\r\n",
    ],
)
async def test_policy_response_larger_than_limit_is_a_fetch_error(response: bytes) -> None:
    with pytest.raises(PolicyFetchError):
        await read(response, max_size=10)


async def test_policy_response_at_the_size_limit_is_read() -> None:
    assert await read(OK + b"\r\n" + b"x" * 10, max_size=10) == b"x" * 10


async def test_https_fetcher_reports_an_unresolvable_policy_host_as_fetch_error() -> None:
    with pytest.raises(PolicyFetchError, match=r"mta-sts\.example\.invalid"):
        await HttpsPolicyFetcher(timeout=5).fetch("example.invalid")  # RFC 6761 §6.4: never resolves
