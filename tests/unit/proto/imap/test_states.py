"""Connection states: which commands each state allows, and the transitions after a command completes."""

from __future__ import annotations

import pytest

from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap.sequence_set import SequenceSet
from kittiwake.proto.imap.states import ALLOWED, TRANSITIONS, ConnectionState, is_allowed, next_state

S = ConnectionState
FETCH = c.Fetch(tag="a", sequence_set=SequenceSet.parse(b"1"), items=())


def test_every_command_type_is_allowed_in_some_state() -> None:
    allowed_somewhere = set().union(*ALLOWED.values())
    assert set(c.ALL_COMMANDS) == allowed_somewhere


@pytest.mark.parametrize("command_type", [c.Capability, c.Noop, c.Logout, c.Id])
def test_any_state_commands_are_allowed_until_logout(command_type: type[c.Command]) -> None:
    for state in (S.NOT_AUTHENTICATED, S.AUTHENTICATED, S.SELECTED):
        assert command_type in ALLOWED[state]
    assert command_type not in ALLOWED[S.LOGOUT]


@pytest.mark.parametrize(
    ("state", "command", "allowed"),
    [
        (S.NOT_AUTHENTICATED, c.Login(tag="a", username=b"u", password=b"p"), True),
        (S.NOT_AUTHENTICATED, c.StartTls(tag="a"), True),
        (S.NOT_AUTHENTICATED, c.Select(tag="a", mailbox="INBOX"), False),
        (S.NOT_AUTHENTICATED, FETCH, False),
        (S.AUTHENTICATED, c.Login(tag="a", username=b"u", password=b"p"), False),
        (S.AUTHENTICATED, c.StartTls(tag="a"), False),
        (S.AUTHENTICATED, c.Select(tag="a", mailbox="INBOX"), True),
        (S.AUTHENTICATED, c.Enable(tag="a", capabilities=("CONDSTORE",)), True),
        (S.AUTHENTICATED, c.Idle(tag="a"), True),
        (S.AUTHENTICATED, FETCH, False),
        (S.AUTHENTICATED, c.Close(tag="a"), False),
        (S.SELECTED, FETCH, True),
        (S.SELECTED, c.Enable(tag="a", capabilities=("CONDSTORE",)), False),
        (S.SELECTED, c.Idle(tag="a"), True),
        (S.SELECTED, c.Append(tag="a", mailbox="INBOX", messages=()), True),
        (S.SELECTED, c.Expunge(tag="a"), True),
        (S.LOGOUT, c.Noop(tag="a"), False),
    ],
)
def test_is_allowed_follows_the_state_table(
    state: ConnectionState, command: c.Command, allowed: bool
) -> None:
    assert is_allowed(state, command) is allowed


@pytest.mark.parametrize(
    ("state", "command", "ok", "after"),
    [
        (S.NOT_AUTHENTICATED, c.Login(tag="a", username=b"u", password=b"p"), True, S.AUTHENTICATED),
        (S.NOT_AUTHENTICATED, c.Login(tag="a", username=b"u", password=b"p"), False, S.NOT_AUTHENTICATED),
        (S.NOT_AUTHENTICATED, c.Authenticate(tag="a", mechanism="PLAIN"), True, S.AUTHENTICATED),
        (S.AUTHENTICATED, c.Select(tag="a", mailbox="INBOX"), True, S.SELECTED),
        (S.AUTHENTICATED, c.Examine(tag="a", mailbox="INBOX"), False, S.AUTHENTICATED),
        (S.SELECTED, c.Select(tag="a", mailbox="Other"), True, S.SELECTED),
        (S.SELECTED, c.Select(tag="a", mailbox="Missing"), False, S.AUTHENTICATED),
        (S.SELECTED, c.Close(tag="a"), True, S.AUTHENTICATED),
        (S.SELECTED, c.Unselect(tag="a"), True, S.AUTHENTICATED),
        (S.SELECTED, FETCH, True, S.SELECTED),
        (S.SELECTED, c.Logout(tag="a"), True, S.LOGOUT),
        (S.NOT_AUTHENTICATED, c.Logout(tag="a"), True, S.LOGOUT),
    ],
)
def test_next_state_follows_the_transition_table(
    state: ConnectionState, command: c.Command, ok: bool, after: ConnectionState
) -> None:
    assert next_state(state, command, ok=ok) is after


def test_every_transition_starts_from_a_state_that_allows_the_command() -> None:
    for state, command_type, _ok in TRANSITIONS:
        assert command_type in ALLOWED[state]
