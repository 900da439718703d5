"""Date: parsing (RFC 5322 §3.3 and §4.3) and date formatting for mail and IMAP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mail.dates import format_imap_datetime, format_rfc5322_date, parse_date


def zone(hours: int, minutes: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes))


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("Sun, 22 Nov 2026 04:30:00 +0000", datetime(2026, 11, 22, 4, 30, tzinfo=UTC)),
        ("22 Nov 2026 04:30 +0100", datetime(2026, 11, 22, 4, 30, tzinfo=zone(1))),
        ("Fri, 13 Mar 2020 10:11:12 -0730", datetime(2020, 3, 13, 10, 11, 12, tzinfo=zone(-7, -30))),
        ("Fri, 21 Nov 1997 09:55:06 -0600 (MDT)", datetime(1997, 11, 21, 9, 55, 6, tzinfo=zone(-6))),
        ("Thu, 13 Feb 69 23:32:54 -0330", datetime(1969, 2, 13, 23, 32, 54, tzinfo=zone(-3, -30))),
        ("1 Jan 05 00:00:00 GMT", datetime(2005, 1, 1, tzinfo=UTC)),
        ("1 Jan 105 00:00:00 GMT", datetime(2005, 1, 1, tzinfo=UTC)),
        ("22 Nov 26 04:30 EST", datetime(2026, 11, 22, 4, 30, tzinfo=zone(-5))),
        ("22 Nov 2026 04:30:00 PDT", datetime(2026, 11, 22, 4, 30, tzinfo=zone(-7))),
        ("22 Nov 2026 04:30:00 A", datetime(2026, 11, 22, 4, 30, tzinfo=UTC)),
        ("22 Nov 2026 04:30:00", datetime(2026, 11, 22, 4, 30, tzinfo=UTC)),
        ("Sun , 22 November 2026 4 : 30 : 60 +0000", datetime(2026, 11, 22, 4, 30, 59, tzinfo=UTC)),
        ("22-Nov-2026 04:30:00 +0000", datetime(2026, 11, 22, 4, 30, tzinfo=UTC)),
        ("Sun Nov 22 04:30:00 2026", datetime(2026, 11, 22, 4, 30, tzinfo=UTC)),
    ],
)
def test_dates_are_parsed_including_obsolete_forms(value: str, moment: datetime) -> None:
    parsed = parse_date(value)
    assert parsed == moment and parsed is not None and parsed.utcoffset() == moment.utcoffset()


@pytest.mark.parametrize(
    "value", ["", "garbage", "31 Feb 2026 00:00:00 +0000", "1 Foo 2026 00:00 +0000", "1 Jan 2026 25:00"]
)
def test_unreadable_dates_give_none(value: str) -> None:
    assert parse_date(value) is None


@given(st.text(max_size=80))
def test_date_parsing_never_raises(value: str) -> None:
    result = parse_date(value)
    assert result is None or result.tzinfo is not None


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 22, 4, 30, tzinfo=UTC), "22-Nov-2026 04:30:00 +0000"),
        (datetime(2026, 11, 2, 4, 30, 5, tzinfo=zone(-5, -30)), " 2-Nov-2026 04:30:05 -0530"),
        (datetime(2026, 1, 9, 23, 0), " 9-Jan-2026 23:00:00 +0000"),
    ],
)
def test_imap_date_time_has_a_space_padded_day(moment: datetime, text: str) -> None:
    assert format_imap_datetime(moment) == text


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 22, 4, 30, tzinfo=UTC), "Sun, 22 Nov 2026 04:30:00 +0000"),
        (datetime(2026, 11, 2, 4, 30, tzinfo=zone(9)), "Mon, 02 Nov 2026 04:30:00 +0900"),
    ],
)
def test_rfc5322_date_round_trips(moment: datetime, text: str) -> None:
    assert format_rfc5322_date(moment) == text
    assert parse_date(text) == moment
