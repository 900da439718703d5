from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from kittiwake.proto.imap.sort_keys import (
    SortAddress,
    SortCriterion,
    SortKey,
    SortRecord,
    ascii_casemap,
    sort_key,
    sort_messages,
)

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def addr(mailbox: str | None, host: str | None = "example.org", name: str | None = None) -> SortAddress:
    return SortAddress(display_name=name, mailbox=mailbox, host=host)


def record(
    number: int,
    *,
    arrival: int = 0,
    sent: datetime | None = None,
    size: int = 0,
    subject: str = "",
    from_: SortAddress | None = None,
    to: SortAddress | None = None,
    cc: SortAddress | None = None,
) -> SortRecord:
    return SortRecord(
        number=number,
        internal_date=EPOCH + timedelta(minutes=arrival),
        sent_date=EPOCH if sent is None else sent,
        size=size,
        base_subject=subject,
        from_=from_,
        to=to,
        cc=cc,
    )


def with_address(number: int, field: str, address: SortAddress) -> SortRecord:
    fields: dict[str, Any] = {field: address}
    return replace(record(number), **fields)


def by(*keys: SortKey | tuple[SortKey, bool]) -> list[SortCriterion]:
    return [
        SortCriterion(key=key[0], reverse=key[1]) if isinstance(key, tuple) else SortCriterion(key=key)
        for key in keys
    ]


def test_ascii_casemap_folds_only_ascii_letters() -> None:
    assert ascii_casemap("abc") == ascii_casemap("ABC")
    assert ascii_casemap("\u00e9") != ascii_casemap("\u00c9")


def test_sort_by_arrival() -> None:
    records = [record(1, arrival=30), record(2, arrival=10), record(3, arrival=20)]
    assert sort_messages(records, by(SortKey.ARRIVAL)) == [2, 3, 1]


def test_sort_by_date_compares_instants_across_offsets() -> None:
    plus_two = timezone(timedelta(hours=2))
    records = [
        record(1, sent=datetime(2026, 1, 1, 12, 0, tzinfo=UTC)),
        record(2, sent=datetime(2026, 1, 1, 13, 0, tzinfo=plus_two)),  # 11:00 UTC
        record(3, sent=datetime(2026, 1, 1, 11, 30, tzinfo=UTC)),
    ]
    assert sort_messages(records, by(SortKey.DATE)) == [2, 3, 1]


def test_sort_by_size() -> None:
    records = [record(1, size=300), record(2, size=100), record(3, size=200)]
    assert sort_messages(records, by(SortKey.SIZE)) == [2, 3, 1]


def test_sort_by_subject_is_case_insensitive_for_ascii() -> None:
    records = [
        record(1, subject="beta"),
        record(2, subject="Alpha"),
        record(3, subject="alpha"),
        record(4, subject=""),
    ]
    assert sort_messages(records, by(SortKey.SUBJECT)) == [4, 2, 3, 1]


@pytest.mark.parametrize(
    ("key", "field"),
    [(SortKey.FROM, "from_"), (SortKey.TO, "to"), (SortKey.CC, "cc")],
)
def test_sort_by_address_uses_the_mailbox_and_puts_missing_first(key: SortKey, field: str) -> None:
    records = [
        with_address(1, field, addr("zed", name="Aaron")),
        with_address(2, field, addr("Bob")),
        record(3),
        with_address(4, field, addr("alice", host="z.example")),
    ]
    assert sort_messages(records, by(key)) == [3, 4, 2, 1]


@pytest.mark.parametrize(("key", "field"), [(SortKey.DISPLAYFROM, "from_"), (SortKey.DISPLAYTO, "to")])
def test_sort_by_display_name_falls_back_to_the_address(key: SortKey, field: str) -> None:
    records = [
        with_address(1, field, addr("zed", name="Aaron")),
        with_address(2, field, addr("bob", host="b.example")),
        with_address(3, field, addr("carol", name="")),
        record(4),
    ]
    assert sort_messages(records, by(key)) == [4, 1, 2, 3]


def test_display_key_of_address_without_name_is_mailbox_at_host() -> None:
    assert sort_key(record(1, from_=addr("Bob", "Example.org")), SortKey.DISPLAYFROM) == b"BOB@EXAMPLE.ORG"


def test_reverse_inverts_one_criterion() -> None:
    records = [record(1, size=1), record(2, size=3), record(3, size=2)]
    assert sort_messages(records, by((SortKey.SIZE, True))) == [2, 3, 1]


def test_ties_keep_sequence_order_even_when_reversed() -> None:
    records = [record(3, size=5), record(1, size=5), record(2, size=9)]
    assert sort_messages(records, by(SortKey.SIZE)) == [1, 3, 2]
    assert sort_messages(records, by((SortKey.SIZE, True))) == [2, 1, 3]


def test_later_criteria_break_ties_of_earlier_ones() -> None:
    records = [
        record(1, subject="b", size=1),
        record(2, subject="a", size=2),
        record(3, subject="b", size=3),
        record(4, subject="a", size=1),
    ]
    assert sort_messages(records, by(SortKey.SUBJECT, (SortKey.SIZE, True))) == [2, 4, 3, 1]
    assert sort_messages(records, by((SortKey.SUBJECT, True), SortKey.SIZE)) == [1, 3, 4, 2]


def test_sort_without_criteria_is_refused() -> None:
    with pytest.raises(ValueError):
        sort_messages([record(1)], [])
