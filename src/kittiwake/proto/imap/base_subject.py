"""Base subject extraction for SORT SUBJECT and THREAD (RFC 5256 §2.1).

The caller has already decoded RFC 2047 encoded words; this module only strips reply and forward
decorations. Case is kept: comparisons apply the i;ascii-casemap comparator themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WHITESPACE_RUN = re.compile(r"[ \t\r\n]+")
# RFC 5256 §5: subj-trailer = "(fwd)" / WSP
_TRAILER = re.compile(r"(?:\(fwd\)| )+\Z", re.IGNORECASE)
# RFC 5256 §5: subj-leader = (*subj-blob subj-refwd) / WSP;
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; subj-blob = "[" *BLOBCHAR "]" *WSP
_REFWD_LEADER = re.compile(r"(?:\[[^\[\]]*\] *)*(?:re|fwd?) *(?:\[[^\[\]]*\] *)?:", re.IGNORECASE)
_BLOB = re.compile(r"\[[^\[\]]*\] *")
_FWD_HEADER = "[fwd:"


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseSubject:
    """A base subject, and whether extracting it removed a reply or forward marker.

    RFC 5256 §2.1: a message is a reply or forward when extraction removed a subj-refwd, a "(fwd)"
    subj-trailer, or a subj-fwd-hdr and subj-fwd-trl. THREAD=REFERENCES uses this when merging by subject.
    """

    text: str
    is_reply_or_forward: bool


def extract_base_subject(subject: str) -> BaseSubject:
    """Apply RFC 5256 §2.1 steps (1) to (6) to a decoded Subject value."""
    # RFC 5256 §2.1 (1): tabs and continuations become spaces; runs of spaces become one.
    text = _WHITESPACE_RUN.sub(" ", subject)
    reply_or_forward = False
    while True:
        text, removed_trailer = _strip_trailers(text)
        text, removed_leader = _strip_leaders_and_blobs(text)
        reply_or_forward = reply_or_forward or removed_trailer or removed_leader
        # RFC 5256 §2.1 (6): "[fwd: ... ]" around the rest is removed and extraction restarts at step (2).
        if len(text) > len(_FWD_HEADER) and text[:5].lower() == _FWD_HEADER and text.endswith("]"):
            text = text[5:-1]
            reply_or_forward = True
            continue
        return BaseSubject(text=text, is_reply_or_forward=reply_or_forward)


def base_subject(subject: str) -> str:
    """The base subject text alone (RFC 5256 §2.1)."""
    return extract_base_subject(subject).text


def _strip_trailers(text: str) -> tuple[str, bool]:
    # RFC 5256 §2.1 (2): remove all trailing "(fwd)" and whitespace.
    match = _TRAILER.search(text)
    if match is None:
        return text, False
    return text[: match.start()], "(fwd)" in match.group().lower()


def _strip_leaders_and_blobs(text: str) -> tuple[str, bool]:
    # RFC 5256 §2.1 (3)-(5): remove leaders, then one blob if something is left, until nothing changes.
    removed_refwd = False
    while True:
        before = text
        while True:
            if text.startswith(" "):
                text = text[1:]
                continue
            match = _REFWD_LEADER.match(text)
            if match is None:
                break
            text = text[match.end() :]
            removed_refwd = True
        blob = _BLOB.match(text)
        if blob is not None and text[blob.end() :]:
            text = text[blob.end() :]
        if text == before:
            return text, removed_refwd
