"""Dates in mail: parsing the RFC 5322 Date: field (obsolete forms included) and formatting dates for
Date:/Received: (RFC 5322 §3.3) and IMAP INTERNALDATE (RFC 9051 §9 `date-time`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# RFC 5322 §4.3: obs-zone names; military letters and unknown names mean "no zone information" (-0000).
_ZONE_HOURS = {"ut": 0, "gmt": 0, "z": 0, "utc": 0, "est": -5, "edt": -4, "cst": -6, "cdt": -5,
               "mst": -7, "mdt": -6, "pst": -8, "pdt": -7}  # fmt: skip

_COMMENT = re.compile(r"\([^()]*\)")
_TIME = r"(?P<hour>\d{1,2})\s*:\s*(?P<minute>\d{1,2})(?:\s*:\s*(?P<second>\d{1,2}))?(?:\.\d+)?"
_ZONE = r"(?:\s*(?P<zone>[+-]\d{4}|[+-]\d{2}:?\d{2}|[A-Za-z]{1,5}))?"
_MONTH = r"(?P<month>[A-Za-z]{3})[A-Za-z]*\.?"
# RFC 5322 §3.3 date-time, with obs- forms: optional day name, 2- or 3-digit years, CFWS nearly anywhere.
_RFC5322 = re.compile(
    rf"(?P<day>\d{{1,2}})\s*[-\s]\s*{_MONTH}\s*[-\s,]\s*(?P<year>\d{{2,4}})\s*,?\s+{_TIME}{_ZONE}"
)
# asctime(3) form, still seen from old software: "Sun Nov 22 04:30:00 2026".
_ASCTIME = re.compile(rf"{_MONTH}\s+(?P<day>\d{{1,2}})\s+{_TIME}\s+(?P<year>\d{{4}}){_ZONE}")


def parse_date(value: str) -> datetime | None:
    """Parse a Date: field value into an aware datetime; None when no date can be read from it."""
    text = value
    for _ in range(3):  # nested comments unwrap from the inside out
        text = _COMMENT.sub(" ", text)
    match = _RFC5322.search(text) or _ASCTIME.search(text)
    if match is None:
        return None
    month_name = match["month"].lower()
    if month_name not in _MONTHS:
        return None
    try:
        return datetime(
            _full_year(match["year"]),
            _MONTHS.index(month_name) + 1,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            min(int(match["second"] or 0), 59),  # a leap second is read as :59
            tzinfo=_parse_zone(match["zone"]),
        )
    except ValueError:
        return None


def _full_year(digits: str) -> int:
    year = int(digits)
    # RFC 5322 §4.3: two-digit years 00-49 are 2000-2049, 50-99 are 1950-1999; three digits add 1900.
    if len(digits) == 2:
        return year + (2000 if year < 50 else 1900)
    if len(digits) == 3:
        return year + 1900
    return year


def _parse_zone(zone: str | None) -> timezone:
    if not zone:
        return UTC
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            return UTC
        offset = timedelta(hours=hours, minutes=minutes)
        return timezone(-offset if zone[0] == "-" else offset)
    return timezone(timedelta(hours=_ZONE_HOURS.get(zone.lower(), 0)))


def _zone_text(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def format_imap_datetime(moment: datetime) -> str:
    """RFC 9051 §9 date-time without quotes: `" 2-Nov-2026 04:30:00 +0000"`; naive datetimes are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # RFC 9051 §9: date-day-fixed is a space-padded day of month.
    return (
        f"{moment.day:2d}-{_MONTH_NAMES[moment.month - 1]}-{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {_zone_text(moment)}"
    )


def format_rfc5322_date(moment: datetime) -> str:
    """RFC 5322 §3.3 date-time: `"Sun, 22 Nov 2026 04:30:00 +0000"`; naive datetimes are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (
        f"{_DAY_NAMES[moment.weekday()]}, {moment.day:02d} {_MONTH_NAMES[moment.month - 1]} {moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {_zone_text(moment)}"
    )
