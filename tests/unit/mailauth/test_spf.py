from __future__ import annotations

import asyncio

import pytest
from tests.fakes import FakeResolver

from kittiwake.mailauth.spf import SpfResult, check_helo, check_host, check_mail_from

CLIENT = "192.0.2.3"


def txt(**records: str) -> dict[str, list[bytes]]:
    """TXT records keyed by name, with '_' in the keyword standing for '.'."""
    return {name.replace("_", "."): [text.encode()] for name, text in records.items()}


def run(
    resolver: FakeResolver,
    *,
    ip: str = CLIENT,
    domain: str = "example.org",
    sender: str = "alice@example.org",
    helo: str = "mx.example.org",
    time_budget: float = 20.0,
) -> SpfResult:
    return asyncio.run(
        check_host(
            ip,
            domain,
            sender,
            helo=helo,
            resolver=resolver,
            receiver="mx.example.net",
            now=1_700_000_000,
            time_budget=time_budget,
        )
    )


def policy(record: str, **more: object) -> FakeResolver:
    resolver = FakeResolver(**more)  # type: ignore[arg-type]
    resolver.txt_records["example.org"] = [record.encode()]
    return resolver


@pytest.mark.parametrize(
    ("record", "result", "mechanism"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", "pass", "ip4:192.0.2.0/24"),
        ("v=spf1 -ip4:192.0.2.3", "fail", "-ip4:192.0.2.3"),
        ("v=spf1 ~all", "softfail", "~all"),
        ("v=spf1 ?all", "neutral", "?all"),
        ("v=spf1 ip4:198.51.100.1", "neutral", None),
        ("v=spf1", "neutral", None),
        ("V=SPF1 +ALL", "pass", "+ALL"),
    ],
)
def test_qualifier_of_first_matching_mechanism_gives_result(
    record: str, result: str, mechanism: str | None
) -> None:
    outcome = run(policy(record))
    assert (outcome.result, outcome.mechanism, outcome.domain) == (result, mechanism, "example.org")


@pytest.mark.parametrize(
    ("texts", "missing", "result"),
    [
        ([], set(), "none"),
        ([b"google-site-verification=abc"], set(), "none"),
        ([b"v=spf10 -all"], set(), "none"),
        ([], {"example.org"}, "none"),
        ([b"v=spf1 -all", b"v=spf1 +all"], set(), "permerror"),
        ([b"v=spf1 -all moo"], set(), "permerror"),
        ([b"v=spf1 a:caf\xc3\xa9.example.com -all"], set(), "permerror"),
        ([b"other", b"v=spf1 -all"], set(), "fail"),
    ],
)
def test_record_selection(texts: list[bytes], missing: set[str], result: str) -> None:
    resolver = FakeResolver(txt_records={"example.org": texts}, missing=missing)
    assert run(resolver).result == result


@pytest.mark.parametrize(
    "domain", ["localhost", "a..example.org", "x" * 64 + ".example.org", "[192.0.2.3]", ""]
)
def test_malformed_or_single_label_domain_gives_none_without_lookup(domain: str) -> None:
    resolver = FakeResolver()
    assert run(resolver, domain=domain).result == "none"
    assert resolver.queries == []


def test_txt_lookup_failure_is_temperror() -> None:
    outcome = run(FakeResolver(failing={"example.org"}))
    assert outcome.result == "temperror"
    assert outcome.problem


def test_address_lookup_failure_in_mechanism_is_temperror() -> None:
    assert (
        run(policy("v=spf1 a:broken.example.org -all", failing={"broken.example.org"})).result == "temperror"
    )


@pytest.mark.parametrize(
    ("included", "result"),
    [
        ("v=spf1 +all", "pass"),
        ("v=spf1 -all", "fail"),
        ("v=spf1 ~all", "fail"),
        ("v=spf1 ?all", "fail"),
        ("v=spf1 moo", "permerror"),
        (None, "permerror"),
    ],
)
def test_include_matches_only_on_pass(included: str | None, result: str) -> None:
    resolver = policy("v=spf1 include:_spf.example.net -all")
    if included is not None:
        resolver.txt_records["_spf.example.net"] = [included.encode()]
    assert run(resolver).result == result


def test_include_lookup_failure_is_temperror() -> None:
    resolver = policy("v=spf1 include:_spf.example.net -all", failing={"_spf.example.net"})
    assert run(resolver).result == "temperror"


def test_redirect_applies_only_after_no_mechanism_matched() -> None:
    resolver = policy("v=spf1 ip4:198.51.100.0/24 redirect=_spf.example.net")
    resolver.txt_records["_spf.example.net"] = [b"v=spf1 ~all"]
    assert run(resolver).result == "softfail"
    resolver.txt_records["example.org"] = [b"v=spf1 redirect=_spf.example.net ?all"]
    assert run(resolver).result == "neutral"


def test_redirect_sets_domain_for_macros_and_default_mechanisms() -> None:
    resolver = policy("v=spf1 redirect=_spf.example.net", a_records={"_spf.example.net": [CLIENT]})
    resolver.txt_records["_spf.example.net"] = [b"v=spf1 a -all"]
    assert run(resolver).result == "pass"


def test_redirect_to_domain_without_record_is_permerror() -> None:
    assert run(policy("v=spf1 redirect=nothing.example.net")).result == "permerror"


def test_a_and_mx_use_dual_cidr_by_address_family() -> None:
    resolver = policy(
        "v=spf1 a/24//64 -all",
        a_records={"example.org": ["192.0.2.200"]},
        aaaa_records={"example.org": ["2001:db8:1:1::99"]},
    )
    assert run(resolver).result == "pass"
    assert run(resolver, ip="2001:db8:1:1::5").result == "pass"
    assert run(resolver, ip="2001:db8:1:2::5").result == "fail"
    assert ("AAAA", "example.org") in resolver.queries


def test_mx_matches_addresses_of_exchanges_and_skips_null_mx() -> None:
    resolver = policy(
        "v=spf1 mx -all",
        mx_records={"example.org": [(0, ""), (10, "mx1.example.org"), (20, "mx2.example.org")]},
        a_records={"mx2.example.org": [CLIENT]},
    )
    assert run(resolver).result == "pass"
    assert ("A", "") not in resolver.queries


def test_mx_without_records_does_not_fall_back_to_a() -> None:
    resolver = policy("v=spf1 mx", a_records={"example.org": [CLIENT]})
    assert run(resolver).result == "neutral"


def test_more_than_ten_mx_records_is_permerror() -> None:
    exchanges = [(n, f"mx{n}.example.org") for n in range(11)]
    assert run(policy("v=spf1 mx", mx_records={"example.org": exchanges})).result == "permerror"


def test_ptr_matches_validated_names_within_target() -> None:
    resolver = policy(
        "v=spf1 ptr -all",
        ptr_records={CLIENT: ["forged.example.org", "Mail.Example.org."]},
        a_records={"mail.example.org": [CLIENT], "forged.example.org": ["198.51.100.9"]},
    )
    assert run(resolver).result == "pass"


def test_ptr_lookup_failure_means_no_match() -> None:
    resolver = policy("v=spf1 ptr ~all", failing={CLIENT})
    assert run(resolver).result == "softfail"


def test_ptr_checks_only_first_ten_names() -> None:
    names = [f"h{n}.example.net" for n in range(10)] + ["mail.example.org"]
    resolver = policy("v=spf1 ptr", ptr_records={CLIENT: names}, a_records={"mail.example.org": [CLIENT]})
    assert run(resolver).result == "neutral"
    assert ("A", "mail.example.org") not in resolver.queries


def test_exists_queries_a_even_for_ipv6_clients() -> None:
    resolver = policy(
        "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all",
        a_records={
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.org": [
                "127.0.0.2"
            ]
        },
    )
    assert run(resolver, ip="2001:db8::cb01").result == "pass"


def test_ipv4_mapped_client_is_treated_as_ipv4() -> None:
    resolver = policy("v=spf1 ip6:::ffff:0:0/96 ip4:192.0.2.3 -all")
    outcome = run(resolver, ip="::ffff:192.0.2.3")
    assert (outcome.result, outcome.mechanism) == ("pass", "ip4:192.0.2.3")


def test_ten_dns_terms_are_allowed_and_the_eleventh_is_permerror() -> None:
    resolver = policy("v=spf1 " + "a " * 10 + "ip4:192.0.2.3", a_records={"example.org": ["198.51.100.1"]})
    outcome = run(resolver)
    assert (outcome.result, outcome.lookups) == ("pass", 10)
    resolver.txt_records["example.org"] = [("v=spf1 " + "a " * 11 + "ip4:192.0.2.3").encode()]
    outcome = run(resolver)
    assert (outcome.result, outcome.lookups) == ("permerror", 11)


def test_lookup_limit_spans_includes_and_redirects() -> None:
    resolver = policy("v=spf1 include:a.example.net redirect=b.example.net")
    resolver.txt_records["a.example.net"] = [b"v=spf1 -exists:x.example.net"]
    resolver.txt_records["b.example.net"] = [("v=spf1 " + "a:c.example.net " * 8 + "+all").encode()]
    resolver.a_records = {name: ["127.0.0.1"] for name in ("x.example.net", "c.example.net")}
    outcome = run(resolver)
    assert (outcome.result, outcome.lookups) == ("permerror", 11)


def test_two_void_lookups_are_allowed_and_a_third_is_permerror() -> None:
    resolver = policy("v=spf1 a:v1.example.org exists:v2.example.org ?all", missing={"v1.example.org"})
    assert run(resolver).result == "neutral"
    resolver.txt_records["example.org"] = [
        b"v=spf1 a:v1.example.org exists:v2.example.org mx:v3.example.org ?all"
    ]
    outcome = run(resolver)
    assert (outcome.result, outcome.problem) == ("permerror", "more than 2 void lookups")


def test_explanation_is_fetched_and_expanded_only_on_fail() -> None:
    resolver = policy("v=spf1 ip4:198.51.100.1 -all exp=why.%{d}")
    resolver.txt_records["why.example.org"] = [b"%{c} may not send for %{o} (%{r}, %{t}, %{l})"]
    outcome = run(resolver)
    assert outcome.explanation == "192.0.2.3 may not send for example.org (mx.example.net, 1700000000, alice)"
    resolver.txt_records["example.org"] = [b"v=spf1 ip4:192.0.2.3 -all exp=why.%{d}"]
    assert run(resolver).explanation is None
    assert resolver.queries.count(("TXT", "why.example.org")) == 1


@pytest.mark.parametrize("exp_texts", [[], [b"one", b"two"], [b"The %{x}-files."], [b"caf\xc3\xa9"]])
def test_unusable_explanation_is_left_out(exp_texts: list[bytes]) -> None:
    resolver = policy("v=spf1 -all exp=why.example.org", txt_records={"why.example.org": exp_texts})
    outcome = run(resolver)
    assert (outcome.result, outcome.explanation) == ("fail", None)


def test_explanation_of_included_record_is_not_used() -> None:
    resolver = policy("v=spf1 include:_spf.example.net -all")
    resolver.txt_records["_spf.example.net"] = [b"v=spf1 -all exp=why.example.net"]
    resolver.txt_records["why.example.net"] = [b"included"]
    outcome = run(resolver)
    assert (outcome.result, outcome.explanation) == ("fail", None)
    assert ("TXT", "why.example.net") not in resolver.queries


def test_p_macro_prefers_validated_name_within_domain() -> None:
    resolver = policy(
        "v=spf1 exists:%{p}.allowed.example.net -all",
        ptr_records={CLIENT: ["other.example.com", "mail.example.org"]},
        a_records={
            "other.example.com": [CLIENT],
            "mail.example.org": [CLIENT],
            "mail.example.org.allowed.example.net": ["127.0.0.2"],
        },
    )
    assert run(resolver).result == "pass"


def test_long_expanded_name_is_truncated_from_the_left() -> None:
    resolver = policy("v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.example.org -all")
    local = "a" * 60
    outcome = run(resolver, sender=f"{local}@example.org")
    assert outcome.result == "fail"
    # Five labels of 60 and example.org make 316 characters; dropping two leaves 194.
    assert ("A", f"{local}.{local}.{local}.example.org") in resolver.queries


def test_slow_dns_past_the_time_budget_is_temperror() -> None:
    class SlowResolver(FakeResolver):
        async def txt(self, name: str) -> list[bytes]:
            await asyncio.sleep(1)
            return []

    outcome = run(SlowResolver(), time_budget=0.05)
    assert (outcome.result, outcome.problem) == ("temperror", "no answer within 0.05 seconds")


def test_explanation_past_the_time_budget_is_left_out_and_fail_kept() -> None:
    class SlowExplanation(FakeResolver):
        async def txt(self, name: str) -> list[bytes]:
            if name == "why.example.org":
                await asyncio.sleep(1)
            return await super().txt(name)

    resolver = SlowExplanation(txt_records={"example.org": [b"v=spf1 -all exp=why.example.org"]})
    outcome = run(resolver, time_budget=0.05)
    assert (outcome.result, outcome.explanation) == ("fail", None)


def test_sender_without_local_part_uses_postmaster() -> None:
    resolver = policy("v=spf1 -all exp=why.example.org", txt_records={"why.example.org": [b"%{s}"]})
    assert run(resolver, sender="@example.org").explanation == "postmaster@example.org"


@pytest.mark.parametrize("mail_from", ["", "<>"])
def test_null_mail_from_checks_postmaster_at_helo(mail_from: str) -> None:
    resolver = FakeResolver(txt_records=txt(mx_example_org="v=spf1 -all exp=why.example.org"))
    resolver.txt_records["why.example.org"] = [b"%{s} %{d}"]
    outcome = asyncio.run(check_mail_from(CLIENT, mail_from, "mx.example.org", resolver))
    assert (outcome.result, outcome.domain) == ("fail", "mx.example.org")
    assert outcome.explanation == "postmaster@mx.example.org mx.example.org"


def test_mail_from_checks_the_sender_domain() -> None:
    resolver = policy("v=spf1 ip4:192.0.2.3 -all")
    outcome = asyncio.run(check_mail_from(CLIENT, "<bob@example.org>", "whatever.example", resolver))
    assert (outcome.result, outcome.domain) == ("pass", "example.org")


def test_helo_address_literal_gives_none() -> None:
    resolver = FakeResolver()
    assert asyncio.run(check_helo(CLIENT, "[192.0.2.3]", resolver)).result == "none"
    assert resolver.queries == []


def test_invalid_client_address_raises_value_error() -> None:
    with pytest.raises(ValueError):
        run(FakeResolver(), ip="not-an-ip")


def test_changed_record_is_applied_as_soon_as_the_answer_changes() -> None:
    # Parsed records are kept by their text, not by domain: a new answer is a new policy at once.
    resolver = policy("v=spf1 ip4:192.0.2.3 -all")
    first = run(resolver)
    resolver.txt_records["example.org"] = [b"v=spf1 -all"]
    second = run(resolver)
    resolver.txt_records["example.org"] = [b"v=spf1 ip4:192.0.2.3 -all"]
    third = run(resolver)
    assert [r.result for r in (first, second, third)] == ["pass", "fail", "pass"]


def test_malformed_record_stays_a_permerror_when_asked_again() -> None:
    resolver = policy("v=spf1 ip4:192.0.2.300 -all")
    first, second = run(resolver), run(resolver)
    assert (first.result, second.result) == ("permerror", "permerror")
    assert first.problem == second.problem and first.problem is not None
    assert "192.0.2.300" in first.problem


def test_each_client_address_is_judged_as_itself() -> None:
    # Parsed client addresses are remembered; each address, in turn and again, keeps its own result.
    resolver = policy("v=spf1 ip4:192.0.2.3 ip6:2001:db8::3 -all")
    clients = {"192.0.2.3": "pass", "192.0.2.4": "fail", "::ffff:192.0.2.3": "pass", "2001:db8::3": "pass",
               "2001:db8::4": "fail"}  # fmt: skip
    for _ in range(2):
        assert {ip: run(resolver, ip=ip).result for ip in clients} == clients


def test_record_too_long_to_be_remembered_is_read_the_same_way() -> None:
    # RFC 7208 §3.4 asks for records that fit a UDP answer, but longer ones must still work (uncached).
    networks = " ".join(f"ip4:198.51.100.{n}" for n in range(100))
    resolver = policy(f"v=spf1 {networks} ip4:192.0.2.3 -all")
    assert len(resolver.txt_records["example.org"][0]) > 1500
    assert (run(resolver).result, run(resolver, ip="192.0.2.4").result) == ("pass", "fail")
    resolver.txt_records["example.org"] = [f"v=spf1 {networks} ip4:192.0.2.300 -all".encode()]
    assert run(resolver).result == "permerror"
