"""What a MIME part's Content-* header fields say, with the RFC 2045/2046 defaults applied."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kittiwake.mail.headers import (
    HeaderField,
    Parameters,
    parse_content_disposition,
    parse_content_type,
    skip_cfws,
)

_CONTENT_FIELDS = frozenset(
    ("content-type", "content-transfer-encoding", "content-id", "content-description", "content-md5",
     "content-disposition", "content-language", "content-location")
)  # fmt: skip
_ENCODING = re.compile(r"[^\x00-\x20()\x7f]+")
_LANGUAGE_SEPARATOR = re.compile(r"[\s,]+")
_TEXT_PLAIN = ("text", "plain", (("charset", "us-ascii"),))
_MESSAGE_RFC822: tuple[str, str, Parameters] = ("message", "rfc822", ())


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentHeaders:
    """The BODYSTRUCTURE facts of one part's header block (RFC 9051 §7.5.2 `body-fields` and extensions)."""

    media_type: str
    media_subtype: str
    params: Parameters
    content_id: str | None
    description: str | None
    encoding: str
    md5: str | None
    disposition: str | None
    disposition_params: Parameters
    language: tuple[str, ...]
    location: str | None


def parse_content_headers(fields: Iterable[HeaderField], *, in_digest: bool = False) -> ContentHeaders:
    """Read the Content-* fields of a part; the first of repeated fields wins.

    RFC 2045 §5.2: a missing or unreadable Content-Type is text/plain; charset=us-ascii, except that
    RFC 2046 §5.1.5 makes it message/rfc822 for the parts of a multipart/digest (`in_digest`).
    RFC 2045 §6.1: a missing Content-Transfer-Encoding is 7BIT.
    """
    values: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        if key in _CONTENT_FIELDS and key not in values:
            values[key] = value
    content_type = values.get("content-type")
    parsed = parse_content_type(content_type) if content_type is not None else None
    if parsed is None:
        parsed = _MESSAGE_RFC822 if in_digest else _TEXT_PLAIN
    disposition_value = values.get("content-disposition")
    disposition, disposition_params = (
        parse_content_disposition(disposition_value) if disposition_value is not None else (None, ())
    )
    return ContentHeaders(
        media_type=parsed[0],
        media_subtype=parsed[1],
        params=parsed[2],
        content_id=values.get("content-id"),
        description=values.get("content-description"),
        encoding=_parse_encoding(values.get("content-transfer-encoding")),
        md5=values.get("content-md5"),
        disposition=disposition,
        disposition_params=disposition_params,
        language=_parse_language(values.get("content-language")),
        location=values.get("content-location"),
    )


def _parse_encoding(value: str | None) -> str:
    if value is None:
        return "7BIT"
    match = _ENCODING.match(value, skip_cfws(value, 0))
    return match[0].upper() if match else "7BIT"


def _parse_language(value: str | None) -> tuple[str, ...]:
    # RFC 3282 §2: Content-Language is a comma-separated list of language tags.
    if value is None:
        return ()
    return tuple(tag for tag in _LANGUAGE_SEPARATOR.split(value) if tag)
