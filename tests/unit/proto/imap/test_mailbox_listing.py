"""Which names LIST and LSUB return: RFC 5258 §5 examples, RFC 3501 §6.3.9 LSUB with "%", missing parents."""

from __future__ import annotations

import pytest

from kittiwake.proto.imap.commands import ListSelection
from kittiwake.proto.imap.mailbox_listing import ListEntry, list_entries, lsub_entries, pattern_regex
from kittiwake.proto.imap.responses import ListResponse

SUBSCRIBED = ListSelection.SUBSCRIBED
RECURSIVEMATCH = ListSelection.RECURSIVEMATCH
SPECIAL_USE = ListSelection.SPECIAL_USE

# RFC 5258 §5 example 1.
FRUIT = dict.fromkeys(
    [
        "INBOX",
        "Fruit",
        "Fruit/Apple",
        "Fruit/Banana",
        "Tofu",
        "Vegetable",
        "Vegetable/Broccoli",
        "Vegetable/Corn",
    ]
)
# RFC 5258 §5 example 2: "Fruit/Peach" is subscribed but does not exist.
FRUIT_SUBSCRIBED = {"INBOX", "Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"}
# RFC 5258 §5 example 8.
FOO = dict.fromkeys(["INBOX", "Foo", "Foo/Bar", "Foo/Baz", "Moo"])
# RFC 5258 §5 example 9: "qux2" does not exist.
TWOS = dict.fromkeys(
    [
        "INBOX",
        "foo2",
        "foo2/bar1",
        "foo2/bar2",
        "baz2",
        "baz2/bar2",
        "baz2/bar22",
        "baz2/bar222",
        "eps2",
        "eps2/mamba",
        "qux2/bar2",
    ]
)
TWOS_SUBSCRIBED = set(TWOS) - {"INBOX", "foo2", "baz2"}


def wire(entries: list[ListEntry], *, lsub: bool = False) -> list[bytes]:
    return [
        ListResponse(
            attributes=entry.attributes,
            delimiter="/",
            name=entry.name,
            child_info=entry.child_info,
            lsub=lsub,
        ).serialize()
        for entry in entries
    ]


def listed(
    mailboxes: dict[str, str | None],
    subscribed: set[str],
    *patterns: str,
    selection: frozenset[ListSelection] = frozenset(),
    show_subscribed: bool = False,
    nonexistent: str = "\\NonExistent",
) -> list[bytes]:
    return wire(
        list_entries(
            mailboxes=mailboxes,
            subscribed=subscribed,
            reference="",
            patterns=patterns,
            selection=selection,
            show_subscribed=show_subscribed or SUBSCRIBED in selection,
            nonexistent=nonexistent,
        )
    )


def test_example_2_subscribed_lists_subscribed_names_that_do_not_exist() -> None:
    assert listed(FRUIT, FRUIT_SUBSCRIBED, "*", selection=frozenset({SUBSCRIBED})) == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" INBOX\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" Fruit/Banana\r\n',
        b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" Fruit/Peach\r\n',
        b'* LIST (\\HasChildren \\Subscribed) "/" Vegetable\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" Vegetable/Broccoli\r\n',
    ]


def test_example_3_percent_lists_the_top_level_with_children_attributes() -> None:
    assert listed(FRUIT, FRUIT_SUBSCRIBED, "%") == [
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b'* LIST (\\HasChildren) "/" Fruit\r\n',
        b'* LIST (\\HasNoChildren) "/" Tofu\r\n',
        b'* LIST (\\HasChildren) "/" Vegetable\r\n',
    ]


def test_example_6_return_subscribed_adds_no_names() -> None:
    lines = listed(FRUIT, FRUIT_SUBSCRIBED, "*", show_subscribed=True)
    assert b'* LIST (\\HasNoChildren) "/" Fruit/Apple\r\n' in lines
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" Fruit/Banana\r\n' in lines
    assert not any(b"Fruit/Peach" in line for line in lines)
    assert len(lines) == len(FRUIT)


@pytest.mark.parametrize(
    ("subscribed", "mailboxes", "expected"),
    [
        # A: only "Foo/Baz" is subscribed.
        ({"Foo/Baz"}, FOO, [b'* LIST (\\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n']),
        # A1: "Foo" is subscribed too.
        (
            {"Foo", "Foo/Baz"},
            FOO,
            [b'* LIST (\\HasChildren \\Subscribed) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n'],
        ),
        # A2: "Foo" is not a mailbox and not subscribed.
        (
            {"Foo/Baz"},
            {name: None for name in FOO if name != "Foo"},
            [b'* LIST (\\NonExistent \\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n'],
        ),
        # B: nothing is subscribed.
        (set(), FOO, []),
        # C: "Foo" and "Moo" are subscribed, none of their children is.
        (
            {"Foo", "Moo"},
            FOO,
            [
                b'* LIST (\\HasChildren \\Subscribed) "/" Foo\r\n',
                b'* LIST (\\HasNoChildren \\Subscribed) "/" Moo\r\n',
            ],
        ),
    ],
)
def test_example_8_recursivematch_returns_parents_of_subscribed_children_with_childinfo(
    subscribed: set[str], mailboxes: dict[str, str | None], expected: list[bytes]
) -> None:
    selection = frozenset({SUBSCRIBED, RECURSIVEMATCH})
    assert listed(mailboxes, subscribed, "%", selection=selection) == expected


def test_example_8_subscribed_without_recursivematch_returns_no_parents() -> None:
    assert listed(FOO, {"Foo/Baz"}, "%", selection=frozenset({SUBSCRIBED})) == []


def test_example_9_childinfo_whether_or_not_the_children_match_and_no_redundant_parents() -> None:
    selection = frozenset({SUBSCRIBED, RECURSIVEMATCH})
    assert listed(TWOS, TWOS_SUBSCRIBED, "*2", selection=selection) == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" baz2/bar2\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" baz2/bar22\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" baz2/bar222\r\n',
        b'* LIST (\\HasChildren \\Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        b'* LIST (\\HasChildren) "/" foo2 ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" foo2/bar2\r\n',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" qux2/bar2\r\n',
    ]


def test_example_9_star_keeps_childinfo_on_subscribed_names_with_subscribed_children() -> None:
    lines = listed(TWOS, TWOS_SUBSCRIBED, "*", selection=frozenset({SUBSCRIBED, RECURSIVEMATCH}))
    assert b'* LIST (\\HasChildren \\Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))\r\n' in lines
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" eps2/mamba\r\n' in lines
    # RFC 5258 §3.5: every subscribed child of "foo2" is returned, so "foo2" itself is not.
    assert not any(b'"/" foo2 ' in line or b'"/" qux2 ' in line for line in lines)


def test_example_10_childinfo_does_not_imply_haschildren() -> None:
    mailboxes = dict.fromkeys(["INBOX", "foo"])
    assert listed(mailboxes, {"foo/bar"}, "foo", "foo/*") == [b'* LIST (\\HasNoChildren) "/" foo\r\n']
    assert listed(mailboxes, {"foo/bar"}, "foo/*", selection=frozenset({SUBSCRIBED})) == [
        b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" foo/bar\r\n'
    ]
    assert listed(mailboxes, {"foo/bar"}, "foo", selection=frozenset({SUBSCRIBED, RECURSIVEMATCH})) == [
        b'* LIST (\\HasNoChildren) "/" foo ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    ]


def test_example_11_a_missing_parent_is_nonexistent_with_children() -> None:
    mailboxes = dict.fromkeys(["music/rock"])
    assert listed(mailboxes, set(), "%") == [b'* LIST (\\NonExistent \\HasChildren) "/" music\r\n']
    assert listed(mailboxes, set(), "%", "music/rock") == [b'* LIST (\\HasNoChildren) "/" music/rock\r\n']


def test_a_missing_parent_is_noselect_for_a_client_that_does_not_know_nonexistent() -> None:
    # RFC 3501 §6.3.8: levels of hierarchy a trailing "%" matches that are not mailboxes are \Noselect.
    lines = listed(dict.fromkeys(["INBOX", "Archive/2024/May"]), set(), "Archive/%", nonexistent="\\Noselect")
    assert lines == [b'* LIST (\\Noselect \\HasChildren) "/" Archive/2024\r\n']


def test_star_does_not_return_a_missing_parent_its_children_are_listed_under() -> None:
    lines = listed(dict.fromkeys(["INBOX", "music/rock"]), set(), "*")
    assert lines == [
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b'* LIST (\\HasNoChildren) "/" music/rock\r\n',
    ]


def test_special_use_selection_with_recursivematch_names_its_criterion_in_childinfo() -> None:
    mailboxes: dict[str, str | None] = {"INBOX": None, "Old": None, "Old/Sent": "\\Sent"}
    lines = listed(mailboxes, set(), "%", selection=frozenset({SPECIAL_USE, RECURSIVEMATCH}))
    assert lines == [b'* LIST (\\HasChildren) "/" Old ("CHILDINFO" ("SPECIAL-USE"))\r\n']


def lsub(subscribed: set[str], pattern: str, reference: str = "") -> list[bytes]:
    return wire(lsub_entries(subscribed=subscribed, reference=reference, pattern=pattern), lsub=True)


def test_lsub_percent_returns_an_unsubscribed_parent_as_noselect() -> None:
    # RFC 3501 §6.3.9: "foo/bar" subscribed, "foo" not: LSUB "" % returns foo, flagged \Noselect.
    assert lsub({"INBOX", "foo/bar"}, "%") == [
        b'* LSUB () "/" INBOX\r\n',
        b'* LSUB (\\Noselect) "/" foo\r\n',
    ]


def test_lsub_percent_returns_a_subscribed_parent_without_noselect() -> None:
    assert lsub({"foo", "foo/bar"}, "%") == [b'* LSUB () "/" foo\r\n']


def test_lsub_percent_stops_at_the_level_it_matches() -> None:
    assert lsub({"foo/bar/baz"}, "foo/%") == [b'* LSUB (\\Noselect) "/" foo/bar\r\n']
    assert lsub({"foo/bar/baz"}, "%", reference="foo/") == [b'* LSUB (\\Noselect) "/" foo/bar\r\n']
    assert lsub({"a/b/c"}, "%") == [b'* LSUB (\\Noselect) "/" a\r\n']


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [("*", [b'* LSUB () "/" foo/bar\r\n']), ("f*", [b'* LSUB () "/" foo/bar\r\n']), ("foo", [])],
)
def test_lsub_without_a_trailing_percent_adds_no_parents(pattern: str, expected: list[bytes]) -> None:
    assert lsub({"foo/bar"}, pattern) == expected


def test_lsub_lists_subscribed_names_whether_or_not_they_exist() -> None:
    # RFC 3501 §6.3.9: subscriptions outlive their mailboxes; LSUB knows only subscriptions.
    assert lsub({"Deleted Box", "INBOX"}, "*") == [
        b'* LSUB () "/" INBOX\r\n',
        b'* LSUB () "/" "Deleted Box"\r\n',
    ]


@pytest.mark.parametrize(
    ("reference", "pattern", "name", "matched"),
    [
        ("", "%", "foo", True),
        ("", "%", "foo/bar", False),
        ("", "*", "foo/bar", True),
        ("foo/", "%", "foo/bar", True),
        ("", "inbox", "INBOX", True),
        ("", "InBox/%", "INBOX/sub", True),
        ("", "inboxes", "INBOXES", False),
    ],
)
def test_patterns_match_per_rfc9051(reference: str, pattern: str, name: str, matched: bool) -> None:
    assert bool(pattern_regex(reference, pattern).match(name)) is matched
