from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fakes import FakeResolver

from kittiwake.mail.address import normalize_domain
from kittiwake.mailauth import org_domain
from kittiwake.mailauth.dmarc import (
    DmarcRecord,
    FromFieldError,
    evaluate,
    evaluate_message,
    from_domain,
    parse_dmarc_record,
)
from kittiwake.mailauth.org_domain import is_public_suffix, organizational_domain

# --- organizational domain (RFC 7489 §3.2) ---


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("example.org", "example.org"),
        ("mail.news.Example.ORG.", "example.org"),
        ("mail.example.co.uk", "example.co.uk"),
        ("co.uk", "co.uk"),
        ("com", "com"),
        ("localhost", "localhost"),
        ("a.b.unknowntld", "b.unknowntld"),
        ("xn--mnchen-3ya.xn--p1ai", "xn--mnchen-3ya.xn--p1ai"),
        ("www.xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
        ("alice.blogspot.com", "alice.blogspot.com"),  # the private section of the list counts
        ("", ""),
    ],
)
def test_organizational_domain_is_public_suffix_plus_one_label(domain: str, expected: str) -> None:
    assert organizational_domain(domain) == expected


@pytest.mark.parametrize(
    ("domain", "expected"), [("co.uk", True), ("com", True), ("example.com", False), ("", False)]
)
def test_is_public_suffix(domain: str, expected: bool) -> None:
    assert is_public_suffix(domain) is expected


def test_public_suffix_list_is_read_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    org_domain._public_suffixes.cache_clear()
    organizational_domain.cache_clear()  # so that the list is loaded again, not answered from memory
    assert organizational_domain("www.example.co.uk") == "example.co.uk"


def test_organizational_domains_of_different_names_stay_apart() -> None:
    # Answers are remembered per name: each name, asked twice and in turn, keeps its own answer.
    names = {"a.example.co.uk": "example.co.uk", "a.example.com": "example.com", "co.uk": "co.uk"}
    for _ in range(2):
        for name, expected in names.items():
            assert organizational_domain(name) == expected


# --- record syntax (RFC 7489 §6.3, §6.4) ---


def record(**changes: object) -> DmarcRecord:
    fields: dict[str, object] = {
        "policy": "none",
        "subdomain_policy": None,
        "nonexistent_policy": None,
        "percent": 100,
        "dkim_alignment": "r",
        "spf_alignment": "r",
        "aggregate_report_uris": "",
        "failure_report_uris": "",
        "failure_options": "0",
        "report_format": "afrf",
        "report_interval": 86400,
    }
    fields.update(changes)
    return DmarcRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=reject", record(policy="reject")),
        (b"v=DMARC1;p=quarantine;", record(policy="quarantine")),
        (" v = DMARC1 ; p = reject ; sp = none ", record(policy="reject", subdomain_policy="none")),
        ("V=DMARC1; P=Reject; ADKIM=S; ASPF=s", record(policy="reject", dkim_alignment="s", spf_alignment="s")),
        (
            "v=DMARC1; p=reject; sp=quarantine; np=reject; pct=25; adkim=s; aspf=r; "
            "rua=mailto:agg@example.org,mailto:b@example.net!10m; ruf=mailto:f@example.org; fo=1:d; rf=afrf; ri=3600",
            record(policy="reject", subdomain_policy="quarantine", nonexistent_policy="reject", percent=25,
                   dkim_alignment="s", aggregate_report_uris="mailto:agg@example.org,mailto:b@example.net!10m",
                   failure_report_uris="mailto:f@example.org", failure_options="1:d", report_interval=3600),
        ),
        ("v=DMARC1; p=none; future=tag", record()),
        ("v=DMARC1; p=reject; p=none", record(policy="reject")),
        # RFC 7489 §6.3: unusable values of optional tags give way to the defaults.
        ("v=DMARC1; p=reject; pct=150; adkim=x; aspf=; fo=2; ri=-1; np=maybe",
         record(policy="reject")),
        ("v=DMARC1; p=reject; pct=0", record(policy="reject", percent=0)),
        ("v=DMARC1; p=reject; pct=abc", record(policy="reject")),
        ("v=DMARC1; p=reject; pct=²; ri=" + "9" * 5000, record(policy="reject")),
        # §6.6.3 step 6: no usable p= but a reporting URI: act as p=none.
        ("v=DMARC1; rua=mailto:agg@example.org", record(aggregate_report_uris="mailto:agg@example.org")),
        ("v=DMARC1; p=bogus; sp=reject; rua=mailto:a@x.example", record(aggregate_report_uris="mailto:a@x.example")),
        ("v=DMARC1; p=reject; sp=bogus; rua=mailto:a@x.example", record(aggregate_report_uris="mailto:a@x.example")),
        ("v=DMARC1; p=reject; sp=bogus", None),
        ("v=DMARC1; p=bogus", None),
        ("v=DMARC1", None),
        ("v=DMARC1; rua=not a uri", None),
        ("p=reject; v=DMARC1", None),
        ("v=DMARC2; p=reject", None),
        ("v=dmarc1; p=reject", None),
        ("v=DMARC1x; p=reject", None),
        ("v=spf1 -all", None),
        ("", None),
    ],
)  # fmt: skip
def test_parse_dmarc_record(text: str | bytes, expected: DmarcRecord | None) -> None:
    assert parse_dmarc_record(text) == expected


@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda text: "v=DMARC1;" + text))
def test_arbitrary_record_text_parses_or_gives_none(text: bytes | str) -> None:
    parsed = parse_dmarc_record(text)
    assert parsed is None or 0 <= parsed.percent <= 100


# --- the author domain (RFC 7489 §6.6.1) ---


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"From: alice@example.org\r\n", "example.org"),
        (b"Subject: x\r\nFrom: \"Alice, A.\" <alice@Mail.Example.ORG>\r\n\r\nFrom: x@y.example\r\n",
         "mail.example.org"),
        (b"From: =?utf-8?q?Al=C3=AFce?= <alice@example.org> (work)\r\n", "example.org"),
        ("From: bob@bücher.example\r\n".encode(), "xn--bcher-kva.example"),
        (b"From: friends: alice@example.org;\r\n", "example.org"),
        (b"FROM:\r\n alice@example.org\r\n", "example.org"),
    ],
)  # fmt: skip
def test_from_domain_of_a_single_author(header: bytes, expected: str) -> None:
    assert from_domain(header) == expected
    assert normalize_domain(expected) == expected  # what evaluate would make of it, so it can skip that


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: no author\r\n",
        b"From: alice@example.org\r\nFrom: bob@example.net\r\n",
        b"From: alice@example.org, bob@example.net\r\n",
        b"From: undisclosed-recipients:;\r\n",
        b"From: alice\r\n",
        b"From: alice@[192.0.2.1]\r\n",
        b"From: alice@exa_mple..org\r\n",
        b"From: alice@\xff.example\r\n",
    ],
)
def test_from_domain_refuses_headers_without_exactly_one_author(header: bytes) -> None:
    with pytest.raises(FromFieldError):
        from_domain(header)


@given(st.binary(max_size=300))
def test_from_domain_of_arbitrary_bytes_raises_only_from_field_error(header: bytes) -> None:
    try:
        domain = from_domain(b"From: " + header)
    except FromFieldError:
        return
    assert domain == domain.lower()
    # evaluate_message skips evaluate's normalisation of the domain, so from_domain must have done it.
    assert normalize_domain(domain.rstrip(".")) == domain and not domain.startswith("[")


# --- evaluation (RFC 7489 §6.6) ---


def resolver(
    records: dict[str, list[bytes]], *, missing: set[str] | None = None, failing: set[str] | None = None
) -> FakeResolver:
    return FakeResolver(txt_records=records, missing=missing or set(), failing=failing or set())


def never() -> float:
    raise AssertionError("no sampling expected")


REJECT = {"_dmarc.example.org": [b"v=DMARC1; p=reject"]}


@pytest.mark.parametrize(
    ("record_text", "spf", "spf_domain", "dkim", "result", "spf_aligned", "dkim_aligned"),
    [
        ("p=reject", "pass", "example.org", [], "pass", True, False),
        ("p=reject", "pass", "bounces.example.org", [], "pass", True, False),
        ("p=reject; aspf=s", "pass", "bounces.example.org", [], "fail", False, False),
        ("p=reject; aspf=s", "pass", "EXAMPLE.org.", [], "pass", True, False),
        ("p=reject", "softfail", "example.org", [], "fail", False, False),
        ("p=reject", "pass", "example.net", [], "fail", False, False),
        ("p=reject", "pass", None, [], "fail", False, False),
        ("p=reject", "fail", "example.org", [("example.org", "pass")], "pass", False, True),
        ("p=reject", "none", None, [("mail.example.org", "pass")], "pass", False, True),
        ("p=reject; adkim=s", "none", None, [("mail.example.org", "pass")], "fail", False, False),
        ("p=reject; adkim=s", "none", None, [("mail.example.org", "pass"), ("example.org", "PASS")], "pass", False,
         True),
        ("p=reject", "none", None, [("example.org", "fail"), ("example.net", "pass")], "fail", False, False),
        ("p=reject", "none", None, [("bad..domain", "pass")], "fail", False, False),
        ("p=reject", "pass", "example.org", [("example.org", "pass")], "pass", True, True),
    ],
)  # fmt: skip
async def test_alignment(
    record_text: str,
    spf: str,
    spf_domain: str | None,
    dkim: list[tuple[str, str]],
    result: str,
    spf_aligned: bool,
    dkim_aligned: bool,
) -> None:
    records = {"_dmarc.example.org": [b"v=DMARC1; " + record_text.encode()]}
    verdict = await evaluate("Example.org", spf, spf_domain, dkim, resolver(records), rng=never)
    assert (verdict.result, verdict.spf_aligned, verdict.dkim_aligned) == (result, spf_aligned, dkim_aligned)
    assert verdict.policy == "reject"
    assert verdict.disposition == ("none" if result == "pass" else "reject")
    assert verdict.domain == "example.org"


async def test_failing_message_gets_the_policy_as_disposition() -> None:
    verdict = await evaluate("example.org", "fail", "example.org", [], resolver(REJECT), rng=never)
    assert (verdict.result, verdict.policy, verdict.disposition) == ("fail", "reject", "reject")
    assert verdict.record_domain == "example.org"
    assert verdict.record == parse_dmarc_record("v=DMARC1; p=reject")


@pytest.mark.parametrize(
    ("policy", "pct", "draw", "disposition"),
    [
        ("reject", 0, None, "quarantine"),
        ("quarantine", 0, None, "none"),
        ("none", 0, None, "none"),
        ("reject", 50, 0.49, "reject"),
        ("reject", 50, 0.5, "quarantine"),
        ("quarantine", 1, 0.0, "quarantine"),
        ("quarantine", 1, 0.01, "none"),
        ("reject", 100, None, "reject"),
    ],
)
async def test_pct_sampling_applies_the_next_lower_policy_to_unpicked_mail(
    policy: str, pct: int, draw: float | None, disposition: str
) -> None:
    records = {"_dmarc.example.org": [f"v=DMARC1; p={policy}; pct={pct}".encode()]}

    rng: Callable[[], float] = never if draw is None else (lambda: draw)
    verdict = await evaluate("example.org", "fail", "example.org", [], resolver(records), rng=rng)
    assert (verdict.result, verdict.policy, verdict.disposition) == ("fail", policy, disposition)


async def test_passing_message_is_never_sampled() -> None:
    records = {"_dmarc.example.org": [b"v=DMARC1; p=reject; pct=0"]}
    verdict = await evaluate("example.org", "pass", "example.org", [], resolver(records), rng=never)
    assert (verdict.result, verdict.disposition) == ("pass", "none")


async def test_no_record_anywhere_is_none_after_both_lookups() -> None:
    dns = resolver({})
    verdict = await evaluate("news.example.org", "pass", "example.org", [], dns)
    assert (verdict.result, verdict.policy, verdict.disposition, verdict.record) == (
        "none",
        "none",
        "none",
        None,
    )
    assert dns.queries == [("TXT", "_dmarc.news.example.org"), ("TXT", "_dmarc.example.org")]


async def test_organizational_domain_itself_is_asked_only_once() -> None:
    dns = resolver({})
    verdict = await evaluate("example.co.uk", "fail", "example.co.uk", [], dns)
    assert verdict.result == "none"
    assert dns.queries == [("TXT", "_dmarc.example.co.uk")]


@pytest.mark.parametrize(
    ("records", "missing", "policy"),
    [
        ({"_dmarc.example.org": [b"v=DMARC1; p=reject; sp=quarantine"]}, set(), "quarantine"),
        ({"_dmarc.example.org": [b"v=DMARC1; p=reject"]}, set(), "reject"),
        ({"_dmarc.example.org": [b"v=DMARC1; p=reject; sp=none"]}, {"_dmarc.news.example.org"}, "none"),
        (
            {"_dmarc.example.org": [b"v=DMARC1; p=reject; sp=none"],
             "_dmarc.news.example.org": [b"v=spf1 -all", b"unrelated"]},
            set(),
            "none",
        ),
        (
            {"_dmarc.example.org": [b"v=DMARC1; p=none"],
             "_dmarc.news.example.org": [b"v=DMARC1; p=quarantine; sp=none"]},
            set(),
            "quarantine",
        ),
    ],
)  # fmt: skip
async def test_subdomain_falls_back_to_organizational_record_and_its_sp(
    records: dict[str, list[bytes]], missing: set[str], policy: str
) -> None:
    verdict = await evaluate(
        "news.example.org", "fail", "example.net", [], resolver(records, missing=missing)
    )
    assert (verdict.result, verdict.policy, verdict.disposition) == ("fail", policy, policy)


async def test_record_found_at_organizational_domain_names_it() -> None:
    records = {"_dmarc.example.org": [b"v=DMARC1; p=reject; sp=quarantine"]}
    verdict = await evaluate("news.example.org", "pass", "example.org", [], resolver(records))
    assert (verdict.result, verdict.record_domain, verdict.domain) == (
        "pass",
        "example.org",
        "news.example.org",
    )


async def test_two_records_mean_no_policy_and_no_fallback() -> None:
    dns = resolver(
        {
            "_dmarc.news.example.org": [b"v=DMARC1; p=reject", b"v=DMARC1; p=none"],
            "_dmarc.example.org": [b"v=DMARC1; p=reject"],
        }
    )
    verdict = await evaluate("news.example.org", "fail", "example.net", [], dns)
    assert (verdict.result, verdict.disposition) == ("none", "none")
    assert dns.queries == [("TXT", "_dmarc.news.example.org")]


async def test_unusable_single_record_means_no_policy() -> None:
    verdict = await evaluate(
        "example.org", "fail", "x.example", [], resolver({"_dmarc.example.org": [b"v=DMARC1"]})
    )
    assert verdict.result == "none"


@pytest.mark.parametrize("failing", ["_dmarc.news.example.org", "_dmarc.example.org"])
async def test_dns_failure_is_temperror(failing: str) -> None:
    verdict = await evaluate("news.example.org", "pass", "example.org", [], resolver({}, failing={failing}))
    assert (verdict.result, verdict.disposition) == ("temperror", "none")


@pytest.mark.parametrize(
    ("missing", "failing", "a_records", "policy"),
    [
        ({"ghost.example.org"}, set(), {}, "reject"),
        (set(), set(), {}, "reject"),  # no A, AAAA or MX: RFC 9091 counts NODATA as non-existent too
        (set(), set(), {"ghost.example.org": ["192.0.2.1"]}, "quarantine"),
        (set(), {"ghost.example.org"}, {}, "quarantine"),
    ],
)
async def test_np_applies_to_subdomains_that_do_not_exist(
    missing: set[str], failing: set[str], a_records: dict[str, list[str]], policy: str
) -> None:
    dns = FakeResolver(
        txt_records={"_dmarc.example.org": [b"v=DMARC1; p=none; sp=quarantine; np=reject"]},
        a_records=a_records,
        missing=missing,
        failing=failing,
    )
    verdict = await evaluate("ghost.example.org", "fail", "example.net", [], dns)
    assert verdict.policy == policy


@pytest.mark.parametrize("domain", ["", "bad..domain", "[192.0.2.1]"])
async def test_unusable_from_domain_is_permerror(domain: str) -> None:
    verdict = await evaluate(domain, "pass", "example.org", [], resolver(REJECT))
    assert (verdict.result, verdict.disposition) == ("permerror", "reject")


@pytest.mark.parametrize(
    ("header", "result", "disposition"),
    [
        (b"From: alice@example.org\r\nTo: bob@example.net\r\n", "fail", "reject"),
        (b"From: alice@example.org\r\nFrom: eve@example.net\r\n", "permerror", "reject"),
        (b"To: bob@example.net\r\n", "permerror", "reject"),
    ],
)
async def test_evaluate_message_reads_the_from_field(header: bytes, result: str, disposition: str) -> None:
    verdict = await evaluate_message(header, "fail", "example.org", [], resolver(REJECT), rng=never)
    assert (verdict.result, verdict.disposition) == (result, disposition)


async def test_changed_record_is_applied_as_soon_as_the_answer_changes() -> None:
    # Parsed records are kept by their text, not by domain: a new answer is a new policy at once.
    records = {"_dmarc.example.org": [b"v=DMARC1; p=none"]}
    dns = resolver(records)
    first = await evaluate("example.org", "fail", "example.org", [], dns, rng=never)
    records["_dmarc.example.org"] = [b"v=DMARC1; p=reject"]
    second = await evaluate("example.org", "fail", "example.org", [], dns, rng=never)
    records["_dmarc.example.org"] = [b"v=DMARC1; p=none"]
    third = await evaluate("example.org", "fail", "example.org", [], dns, rng=never)
    assert [v.disposition for v in (first, second, third)] == ["none", "reject", "none"]


async def test_alignment_mode_change_is_applied_for_the_same_domains() -> None:
    # The same (signer, From domain) pair, once relaxed and once strict: the answers must differ.
    records = {"_dmarc.example.org": [b"v=DMARC1; p=reject"]}
    dns = resolver(records)
    dkim = [("mail.example.org", "pass")]
    relaxed = await evaluate("example.org", "none", None, dkim, dns, rng=never)
    records["_dmarc.example.org"] = [b"v=DMARC1; p=reject; adkim=s"]
    strict = await evaluate("example.org", "none", None, dkim, dns, rng=never)
    assert (relaxed.result, strict.result) == ("pass", "fail")


def test_from_domain_answers_stay_with_their_field() -> None:
    # Read From fields are remembered by their text; each header, in turn and again, gets its own answer.
    headers = {
        b"From: alice@example.org\r\n": "example.org",
        b"From: Bob <bob@Example.NET>\r\n": "example.net",
        b"From: alice@example.org, bob@example.net\r\n": None,
        b"From: alice\r\n": None,
    }
    for _ in range(2):
        for header, expected in headers.items():
            if expected is None:
                with pytest.raises(FromFieldError):
                    from_domain(header)
            else:
                assert from_domain(header) == expected


async def test_texts_too_long_to_be_remembered_are_read_the_same_way() -> None:
    # Long From fields, records and names skip the caches; the answers must not change with length.
    name = "A" * 2000
    assert from_domain(f"From: {name} <alice@Example.org>\r\n".encode()) == "example.org"
    with pytest.raises(FromFieldError):
        from_domain(f"From: {name} <alice@example.org>, bob@example.net\r\n".encode())
    rua = ",".join(f"mailto:r{n}@example.org" for n in range(100))
    records = {"_dmarc.example.org": [f"v=DMARC1; p=quarantine; adkim=s; rua={rua}".encode()]}
    dots = "." * 2000  # trailing dots are dropped before names are compared, so these names still align
    verdict = await evaluate("example.org", "none", None, [("example.org" + dots, "pass")], resolver(records))
    assert verdict.record is not None and verdict.record.aggregate_report_uris == rua
    assert (verdict.result, verdict.policy, verdict.dkim_aligned) == ("pass", "quarantine", True)
    subdomain = [("mail.example.org" + dots, "pass")]  # adkim=s: a subdomain does not align
    strict = await evaluate("example.org", "none", None, subdomain, resolver(records), rng=never)
    assert (strict.result, strict.disposition) == ("fail", "quarantine")
