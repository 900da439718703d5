from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.proto.imap.base_subject import extract_base_subject
from kittiwake.proto.imap.responses import ThreadResponse
from kittiwake.proto.imap.thread_algorithms import (
    ThreadMessage,
    ThreadNode,
    render_threads,
    thread_ordered_subject,
    thread_references,
)

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def msg(
    number: int,
    *,
    message_id: str | None = None,
    references: tuple[str, ...] = (),
    subject: str = "",
    minute: int | None = None,
) -> ThreadMessage:
    """A message whose sent date defaults to `number` minutes after the epoch."""
    base = extract_base_subject(subject)
    return ThreadMessage(
        number=number,
        message_id=message_id,
        references=references,
        base_subject=base.text,
        is_reply_or_forward=base.is_reply_or_forward,
        sent_date=EPOCH + timedelta(minutes=number if minute is None else minute),
    )


def references(*messages: ThreadMessage) -> bytes:
    return render_threads(thread_references(messages))


def ordered_subject(*messages: ThreadMessage) -> bytes:
    return render_threads(thread_ordered_subject(messages))


@pytest.mark.parametrize(
    ("threads", "expected"),
    [
        ((), b""),
        ((ThreadNode(1),), b"(1)"),
        ((ThreadNode(1), ThreadNode(2)), b"(1)(2)"),
        ((ThreadNode(1, (ThreadNode(2, (ThreadNode(3),)),)),), b"(1 2 3)"),
        ((ThreadNode(1, (ThreadNode(2), ThreadNode(3))),), b"(1 (2)(3))"),
        ((ThreadNode(None, (ThreadNode(4), ThreadNode(5, (ThreadNode(6),)))),), b"((4)(5 6))"),
        (
            (
                ThreadNode(2),
                ThreadNode(
                    3,
                    (
                        ThreadNode(
                            6,
                            (
                                ThreadNode(4, (ThreadNode(23),)),
                                ThreadNode(44, (ThreadNode(7, (ThreadNode(96),)),)),
                            ),
                        ),
                    ),
                ),
            ),
            b"(2)(3 6 (4 23)(44 7 96))",
        ),
    ],
)
def test_render_threads_follows_the_thread_list_grammar(
    threads: tuple[ThreadNode, ...], expected: bytes
) -> None:
    assert render_threads(threads) == expected


def test_thread_response_serializes_the_rfc_5256_example() -> None:
    threads = thread_references(
        [
            msg(2, message_id="<2>", subject="A"),
            msg(3, message_id="<3>", subject="B"),
            msg(6, message_id="<6>", references=("<3>",), subject="Re: B"),
            msg(4, message_id="<4>", references=("<3>", "<6>"), subject="Re: B"),
            msg(23, message_id="<23>", references=("<3>", "<6>", "<4>"), subject="Re: B"),
            msg(44, message_id="<44>", references=("<3>", "<6>"), subject="Re: B"),
            msg(7, message_id="<7>", references=("<3>", "<6>", "<44>"), subject="Re: B", minute=45),
            msg(96, message_id="<96>", references=("<3>", "<6>", "<44>", "<7>"), subject="Re: B"),
        ]
    )
    assert ThreadResponse(threads=threads).serialize() == b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"


def test_empty_thread_response_has_no_payload() -> None:
    assert ThreadResponse(threads=()).serialize() == b"* THREAD\r\n"


def test_ordered_subject_groups_by_base_subject_with_flat_children() -> None:
    result = ordered_subject(
        msg(1, subject="Hello"),
        msg(2, subject="Re: Hello"),
        msg(3, subject="Other"),
        msg(4, subject="Re: other"),
        msg(5, subject="hello"),
        msg(6, subject="Fwd: Re: Hello"),
    )
    assert result == b"(1 (2)(5)(6))(3 4)"


def test_ordered_subject_orders_threads_by_first_sent_date() -> None:
    result = ordered_subject(
        msg(1, subject="late", minute=50),
        msg(2, subject="early", minute=10),
        msg(3, subject="Re: late", minute=5),
    )
    # "late" starts with message 3 (minute 5), before "early" (minute 10).
    assert result == b"(3 1)(2)"


def test_ordered_subject_breaks_date_ties_by_number() -> None:
    result = ordered_subject(msg(2, subject="x", minute=1), msg(1, subject="x", minute=1))
    assert result == b"(1 2)"


def test_references_links_replies_under_their_parent() -> None:
    assert references(msg(1, message_id="<a>"), msg(2, message_id="<b>", references=("<a>",))) == b"(1 2)"


def test_references_groups_siblings_of_a_missing_parent_under_a_dummy() -> None:
    result = references(
        msg(5, message_id="<5>", references=("<gone>",), subject="one"),
        msg(6, message_id="<6>", references=("<gone>",), subject="two"),
    )
    assert result == b"((5)(6))"


def test_references_promotes_a_lone_child_of_a_missing_parent_to_the_root() -> None:
    assert references(msg(5, message_id="<5>", references=("<gone>",))) == b"(5)"


def test_references_splices_out_a_missing_intermediate_message() -> None:
    result = references(msg(1, message_id="<a>"), msg(3, message_id="<c>", references=("<a>", "<b>")))
    assert result == b"(1 3)"


def test_references_splices_several_children_of_a_missing_intermediate_message() -> None:
    result = references(
        msg(1, message_id="<a>"),
        msg(3, message_id="<c>", references=("<a>", "<b>")),
        msg(4, message_id="<d>", references=("<a>", "<b>")),
    )
    assert result == b"(1 (3)(4))"


def test_references_ignores_a_reference_loop() -> None:
    result = references(
        msg(1, message_id="<a>", references=("<b>",), subject="x"),
        msg(2, message_id="<b>", references=("<a>",), subject="y"),
    )
    assert result == b"(2 1)"


def test_references_ignores_a_self_reference() -> None:
    assert references(msg(1, message_id="<a>", references=("<a>",))) == b"(1)"


def test_references_survives_a_three_message_loop() -> None:
    result = references(
        msg(1, message_id="<a>", references=("<c>", "<b>"), subject="p"),
        msg(2, message_id="<b>", references=("<a>", "<c>"), subject="q"),
        msg(3, message_id="<c>", references=("<b>", "<a>"), subject="r"),
    )
    numbers = sorted(int(token) for token in result.replace(b"(", b" ").replace(b")", b" ").split())
    assert numbers == [1, 2, 3]


def test_references_message_without_references_drops_a_parent_guessed_from_others() -> None:
    # Message 1 claims <x> is the parent of <c>; message 2 (<c>) has no references, so it is a root.
    result = references(
        msg(1, message_id="<a>", references=("<x>", "<c>"), subject="first"),
        msg(2, message_id="<c>", subject="second"),
    )
    assert result == b"(2 1)"


def test_references_truncated_references_are_replaced_by_the_message_own() -> None:
    # Message 3 says <p> -> <q> -> <c>; message 2 is <q> itself and names only <r> as its parent.
    result = references(
        msg(1, message_id="<r>", subject="s"),
        msg(3, message_id="<c>", references=("<p>", "<q>"), subject="Re: s"),
        msg(2, message_id="<q>", references=("<r>",), subject="Re: s", minute=10),
    )
    assert result == b"(1 2 3)"


def test_references_duplicate_message_ids_keep_the_first_message() -> None:
    result = references(
        msg(1, message_id="<a>", subject="first"),
        msg(2, message_id="<a>", subject="duplicate"),
        msg(3, message_id="<b>", references=("<a>",), subject="reply"),
    )
    assert result == b"(1 3)(2)"


def test_references_messages_without_ids_are_separate_threads() -> None:
    assert references(msg(1, subject="a"), msg(2, subject="b")) == b"(1)(2)"


def test_references_merges_unrelated_roots_with_the_same_subject_under_a_dummy() -> None:
    result = references(msg(1, message_id="<a>", subject="Hello"), msg(2, message_id="<b>", subject="hello"))
    assert result == b"((1)(2))"


def test_references_makes_a_reply_root_a_child_of_the_original_subject() -> None:
    result = references(
        msg(1, message_id="<a>", subject="Hello"),
        msg(2, message_id="<b>", references=("<gone>",), subject="Re: Hello"),
    )
    assert result == b"(1 2)"


def test_references_original_found_later_still_takes_the_reply() -> None:
    result = references(
        msg(1, message_id="<b>", subject="Re: Hello", minute=1),
        msg(2, message_id="<a>", subject="Hello", minute=2),
    )
    assert result == b"(2 1)"


def test_references_adds_a_same_subject_root_to_an_existing_dummy() -> None:
    result = references(
        msg(1, message_id="<1>", references=("<gone>",), subject="topic"),
        msg(2, message_id="<2>", references=("<gone>",), subject="Re: topic"),
        msg(3, message_id="<3>", subject="Topic"),
    )
    assert result == b"((1)(2)(3))"


def test_references_merges_two_dummies_with_the_same_subject() -> None:
    result = references(
        msg(1, message_id="<1>", references=("<gone1>",), subject="topic"),
        msg(2, message_id="<2>", references=("<gone1>",), subject="topic"),
        msg(3, message_id="<3>", references=("<gone2>",), subject="topic"),
        msg(4, message_id="<4>", references=("<gone2>",), subject="topic"),
    )
    assert result == b"((1)(2)(3)(4))"


def test_references_does_not_merge_empty_subjects() -> None:
    result = references(msg(1, message_id="<a>", subject="Re:"), msg(2, message_id="<b>", subject=""))
    assert result == b"(1)(2)"


def test_references_sorts_siblings_by_sent_date_then_number() -> None:
    result = references(
        msg(1, message_id="<a>"),
        msg(2, message_id="<b>", references=("<a>",), minute=30),
        msg(3, message_id="<c>", references=("<a>",), minute=20),
        msg(4, message_id="<d>", references=("<a>",), minute=20),
    )
    assert result == b"(1 (3)(4)(2))"


def test_references_sorts_root_dummies_by_their_first_child() -> None:
    result = references(
        msg(1, message_id="<1>", subject="solo", minute=50),
        msg(2, message_id="<2>", references=("<gone>",), subject="x", minute=70),
        msg(3, message_id="<3>", references=("<gone>",), subject="y", minute=40),
    )
    assert result == b"((3)(2))(1)"


def test_references_handles_a_reply_chain_deeper_than_the_recursion_limit() -> None:
    depth = 5000
    chain = [msg(1, message_id="<1>", subject="deep")]
    chain += [
        msg(n, message_id=f"<{n}>", references=(f"<{n - 1}>",), subject="Re: deep")
        for n in range(2, depth + 1)
    ]
    result = references(*chain)
    assert result == b"(" + b" ".join(b"%d" % n for n in range(1, depth + 1)) + b")"


_IDS = st.sampled_from(["<a>", "<b>", "<c>", "<d>", "<e>"])
_MESSAGES = st.lists(
    st.tuples(
        st.none() | _IDS,
        st.lists(_IDS, max_size=4).map(tuple),
        st.sampled_from(["", "x", "Re: x", "y", "[fwd: y]"]),
        st.integers(min_value=0, max_value=5),
    ),
    max_size=12,
)


def _no_dummies(node: ThreadNode) -> bool:
    return node.number is not None and all(_no_dummies(child) for child in node.children)


def _numbers_in(rendered: bytes) -> list[int]:
    return sorted(int(token) for token in rendered.replace(b"(", b" ").replace(b")", b" ").split())


@given(_MESSAGES)
def test_references_places_every_message_exactly_once(
    specs: list[tuple[str | None, tuple[str, ...], str, int]],
) -> None:
    messages = [
        msg(number, message_id=message_id, references=refs, subject=subject, minute=minute)
        for number, (message_id, refs, subject, minute) in enumerate(specs, start=1)
    ]
    threads = thread_references(messages)
    rendered = render_threads(threads)
    assert _numbers_in(rendered) == list(range(1, len(specs) + 1))
    # Dummies survive only at the root, grouping at least two children.
    assert all(root.number is not None or len(root.children) >= 2 for root in threads)
    assert all(_no_dummies(child) for root in threads for child in root.children)
    assert rendered.count(b"(") == rendered.count(b")")
    assert b"()" not in rendered


@given(_MESSAGES)
def test_ordered_subject_places_every_message_exactly_once(
    specs: list[tuple[str | None, tuple[str, ...], str, int]],
) -> None:
    messages = [
        msg(number, subject=subject, minute=minute)
        for number, (_, _, subject, minute) in enumerate(specs, start=1)
    ]
    assert _numbers_in(ordered_subject(*messages)) == list(range(1, len(specs) + 1))
