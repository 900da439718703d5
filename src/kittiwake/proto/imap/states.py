"""Connection states (RFC 9051 §3) and which commands each state allows (RFC 9051 §6).

Theory of operation
-------------------
A connection starts NOT_AUTHENTICATED (or AUTHENTICATED after PREAUTH). `ALLOWED` says which command types
the dispatcher may run in each state; anything else gets `BAD` without reaching a handler. After a handler
answered, `next_state(state, command, ok)` gives the state to continue in: a successful LOGIN/AUTHENTICATE
authenticates, a successful SELECT/EXAMINE selects, CLOSE/UNSELECT deselect, LOGOUT ends the session. A
failed SELECT/EXAMINE in the selected state also leaves it (RFC 9051 §6.3.2: the previous mailbox is
deselected before the new one is tried).
"""

from __future__ import annotations

import enum

from kittiwake.proto.imap import commands as c


class ConnectionState(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


# RFC 9051 §6.1: any state. RFC 2971 §3.1: ID in any state.
_ANY_STATE: frozenset[type[c.Command]] = frozenset({c.Capability, c.Noop, c.Logout, c.Id})
# RFC 9051 §6.2.
_NOT_AUTHENTICATED: frozenset[type[c.Command]] = frozenset({c.StartTls, c.Authenticate, c.Login})
# RFC 9051 §6.3, RFC 9208 §4 (quota), RFC 2177 (IDLE), RFC 4978 §3 (COMPRESS after authentication).
_AUTHENTICATED: frozenset[type[c.Command]] = frozenset(
    {
        c.Select,
        c.Examine,
        c.Create,
        c.Delete,
        c.Rename,
        c.Subscribe,
        c.Unsubscribe,
        c.List,
        c.Lsub,
        c.Namespace,
        c.Status,
        c.Append,
        c.Idle,
        c.GetQuota,
        c.GetQuotaRoot,
        c.SetQuota,
        c.Compress,
    }
)
# RFC 5161 §3.1 / RFC 9051 §6.3.1: ENABLE only in the authenticated state.
_AUTHENTICATED_ONLY: frozenset[type[c.Command]] = frozenset({c.Enable})
# RFC 9051 §6.4, RFC 6851 (MOVE), RFC 5256 (SORT, THREAD).
_SELECTED: frozenset[type[c.Command]] = frozenset(
    {
        c.Check,
        c.Close,
        c.Unselect,
        c.Expunge,
        c.Search,
        c.Fetch,
        c.Store,
        c.Copy,
        c.Move,
        c.Sort,
        c.Thread,
    }
)

ALLOWED: dict[ConnectionState, frozenset[type[c.Command]]] = {
    ConnectionState.NOT_AUTHENTICATED: _ANY_STATE | _NOT_AUTHENTICATED,
    ConnectionState.AUTHENTICATED: _ANY_STATE | _AUTHENTICATED | _AUTHENTICATED_ONLY,
    ConnectionState.SELECTED: _ANY_STATE | _AUTHENTICATED | _SELECTED,
    ConnectionState.LOGOUT: frozenset(),
}

# (state, command type, succeeded) -> next state; pairs not listed keep the state.
TRANSITIONS: dict[tuple[ConnectionState, type[c.Command], bool], ConnectionState] = {
    (ConnectionState.NOT_AUTHENTICATED, c.Login, True): ConnectionState.AUTHENTICATED,
    (ConnectionState.NOT_AUTHENTICATED, c.Authenticate, True): ConnectionState.AUTHENTICATED,
    (ConnectionState.AUTHENTICATED, c.Select, True): ConnectionState.SELECTED,
    (ConnectionState.AUTHENTICATED, c.Examine, True): ConnectionState.SELECTED,
    (ConnectionState.SELECTED, c.Select, False): ConnectionState.AUTHENTICATED,
    (ConnectionState.SELECTED, c.Examine, False): ConnectionState.AUTHENTICATED,
    (ConnectionState.SELECTED, c.Close, True): ConnectionState.AUTHENTICATED,
    (ConnectionState.SELECTED, c.Unselect, True): ConnectionState.AUTHENTICATED,
}
for _state in (ConnectionState.NOT_AUTHENTICATED, ConnectionState.AUTHENTICATED, ConnectionState.SELECTED):
    for _ok in (True, False):
        # RFC 9051 §6.1.3: the server always answers LOGOUT with BYE and closes.
        TRANSITIONS[(_state, c.Logout, _ok)] = ConnectionState.LOGOUT


def is_allowed(state: ConnectionState, command: c.Command) -> bool:
    """True when `command` may run in `state`; otherwise the server answers BAD."""
    return type(command) in ALLOWED[state]


def next_state(state: ConnectionState, command: c.Command, *, ok: bool) -> ConnectionState:
    """The state after `command` completed (`ok`: tagged OK) in `state`."""
    return TRANSITIONS.get((state, type(command), ok), state)
