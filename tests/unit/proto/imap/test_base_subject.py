from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.proto.imap.base_subject import base_subject, extract_base_subject


@pytest.mark.parametrize(
    ("subject", "expected", "reply_or_forward"),
    [
        ("hello", "hello", False),
        ("", "", False),
        ("Re: hello", "hello", True),
        ("RE: Re: re: hello", "hello", True),
        ("Re : hello", "hello", True),
        ("Re:hello", "hello", True),
        ("Fwd: hello", "hello", True),
        ("Fw: hello", "hello", True),
        ("FWD: hello", "hello", True),
        ("Re[2]: hello", "hello", True),
        ("Re [2] : hello", "hello", True),
        ("[list] Re: hello", "hello", True),
        ("[a] [b] Re: hello", "hello", True),
        ("Re: [list] hello", "hello", True),
        ("[list] hello", "hello", False),
        ("[list]", "[list]", False),
        ("[a][b]", "[b]", False),
        ("Fwd:Re:[x] [y] hello", "hello", True),
        ("hello (fwd)", "hello", True),
        ("hello (fwd) (FWD)  ", "hello", True),
        ("hello   ", "hello", False),
        ("[Fwd: hello]", "hello", True),
        ("[fwd: Re: hello]", "hello", True),
        ("Re: [fwd: hello]", "hello", True),
        ("[fwd: [fwd: x]]", "x", True),
        ("[fwd: hello] (fwd)", "hello", True),
        ("  multiple   spaces\tand\t\ttabs  ", "multiple spaces and tabs", False),
        ("folded\r\n line", "folded line", False),
        ("Re:", "", True),
        ("Re: Re: (fwd)", "", True),
        ("Reply to this", "Reply to this", False),
        ("Rex: hello", "Rex: hello", False),
        ("Re: Caf\u00e9 \u00fcber alles", "Caf\u00e9 \u00fcber alles", True),
        ("Subject with [brackets] inside", "Subject with [brackets] inside", False),
    ],
)
def test_base_subject_table(subject: str, expected: str, reply_or_forward: bool) -> None:
    result = extract_base_subject(subject)
    assert result.text == expected
    assert result.is_reply_or_forward is reply_or_forward


def test_base_subject_returns_the_text_alone() -> None:
    assert base_subject("Re: [list] Fwd: x") == "x"


def test_base_subject_keeps_case() -> None:
    assert base_subject("RE: Hello World") == "Hello World"


_SUBJECT_ALPHABET = st.sampled_from(
    ["Re", "re", "Fwd", "fw", ":", " ", "\t", "[", "]", "(fwd)", "x", "y", "fwd:"]
)


@given(st.lists(_SUBJECT_ALPHABET, max_size=30).map("".join))
def test_base_subject_is_trimmed_substring_of_the_normalised_subject(subject: str) -> None:
    text = base_subject(subject)
    normalised = re.sub(r"[ \t\r\n]+", " ", subject)
    assert text == text.strip(" ")
    assert text in normalised


@given(st.text(max_size=200))
def test_base_subject_accepts_any_text(subject: str) -> None:
    assert isinstance(extract_base_subject(subject).text, str)
