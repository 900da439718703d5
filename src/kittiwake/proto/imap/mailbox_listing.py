"""Which names LIST and LSUB return, and with which attributes (RFC 9051 §6.3.9, RFC 5258, RFC 3501 §6.3.9).

Theory of operation: the caller passes the account's mailboxes (name → special-use attribute or None) and its
subscriptions; nothing here reads a store. A LIST command's selection criteria pick the names that "meet"
them: existing mailboxes for a plain LIST, subscribed names (existing or not) for SUBSCRIBED, mailboxes with
a special-use attribute for SPECIAL-USE. Each name that meets the criteria and matches a pattern is returned.

RFC 5258 §3.3 allows one more reason to return a name: it matches a pattern, does not meet the criteria, and
has a descendant that meets them but matches no pattern (the pattern's "%" stopped above it). Such a parent
is returned when RECURSIVEMATCH asks for it, with the CHILDINFO item (§3.5). On a plain LIST, when a
mailbox exists under a name that does not (creating superior names is only a SHOULD: RFC 9051 §6.3.4), the
missing parent is returned as `\\NonExistent \\HasChildren` (§3.5 note, example 11; RFC 3501 §6.3.8 for a
trailing "%"). A parent whose descendants are all returned anyway is left out, as the §3.5 SHOULD asks.
LSUB does the same with subscriptions when its pattern ends in "%", flagging the parent \\Noselect
(RFC 3501 §6.3.9).

Clients that did not use the extended LIST syntax and did not enable IMAP4rev2 may not know \\NonExistent
(RFC 3501 has only \\Noselect, which \\NonExistent implies: RFC 5258 §3.4), so they are told \\Noselect.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from kittiwake.proto.imap.commands import ListSelection
from kittiwake.proto.imap.mailbox_names import DELIMITER, INBOX

__all__ = ["ListEntry", "list_entries", "lsub_entries", "pattern_regex"]

# RFC 5258 §3.1: the options that pick names; RECURSIVEMATCH modifies them and REMOTE adds nothing here.
_BASE_OPTIONS = (ListSelection.SUBSCRIBED, ListSelection.SPECIAL_USE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListEntry:
    """One LIST or LSUB response: the name, its attributes, and the RFC 5258 §3.5 CHILDINFO criteria."""

    name: str
    attributes: tuple[str, ...]
    child_info: tuple[str, ...] = ()


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 9051 §6.3.9: `*` matches anything, `%` anything but the delimiter; INBOX matches without case."""
    full = pattern if pattern.startswith(DELIMITER) or not reference else reference + pattern
    if full[:5].upper() == INBOX and (len(full) == 5 or full[5] in (DELIMITER, "*", "%")):
        full = INBOX + full[5:]
    parts = []
    for chunk in re.split(r"([*%])", full):
        if chunk == "*":
            parts.append(".*")
        elif chunk == "%":
            parts.append(f"[^{re.escape(DELIMITER)}]*")
        else:
            parts.append(re.escape(chunk))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _superiors(name: str) -> Iterable[str]:
    """The names above `name` in the hierarchy, nearest first: "a/b/c" gives "a/b", then "a"."""
    position = name.rfind(DELIMITER)
    while position > 0:
        name = name[:position]
        yield name
        position = name.rfind(DELIMITER)


def _inbox_first(name: str) -> tuple[int, str]:
    return (0 if name == INBOX else 1, name)


def list_entries(
    *,
    mailboxes: Mapping[str, str | None],
    subscribed: Collection[str],
    reference: str,
    patterns: Sequence[str],
    selection: Collection[ListSelection] = (),
    show_subscribed: bool = False,
    nonexistent: str = "\\NonExistent",
) -> list[ListEntry]:
    """The LIST responses, INBOX first, then by name.

    `mailboxes` maps each existing name to its special-use attribute (or None); `show_subscribed` is set by
    the SUBSCRIBED selection or return option; `nonexistent` is the attribute that marks a name with no
    mailbox behind it: "\\NonExistent", or "\\Noselect" for a client that does not know it.
    """
    regexes = [pattern_regex(reference, pattern) for pattern in patterns]
    base = [option for option in _BASE_OPTIONS if option in selection]
    recursive = ListSelection.RECURSIVEMATCH in selection

    def meets(name: str) -> bool:
        if ListSelection.SUBSCRIBED in base and name not in subscribed:
            return False
        if ListSelection.SPECIAL_USE in base and not mailboxes.get(name):
            return False
        return bool(base) or name in mailboxes

    def matches(name: str) -> bool:
        return any(regex.match(name) for regex in regexes)

    universe: Collection[str] = (
        set(mailboxes) | set(subscribed) if ListSelection.SUBSCRIBED in base else mailboxes
    )
    meeting = [name for name in universe if meets(name)]
    returned = {name for name in meeting if matches(name)}
    # RFC 5258 §3.5: CHILDINFO goes with every name that has a descendant meeting the criteria.
    with_meeting_child: set[str] = set()
    above_unmatched: set[str] = set()  # names above one that meets the criteria but matches no pattern
    parents: set[str] = set()  # RFC 5258 §3.3 rule 2B: those of them that a pattern matches
    for name in meeting:
        unmatched = name not in returned
        marked = above_unmatched if unmatched else with_meeting_child
        for superior in _superiors(name):
            if superior in marked:
                break  # an earlier name marked the rest of the way up
            with_meeting_child.add(superior)
            if unmatched:
                above_unmatched.add(superior)
                if matches(superior):
                    parents.add(superior)
    if recursive or not base:
        returned |= parents
    children = {superior for name in mailboxes for superior in _superiors(name)}
    child_info = tuple(option.value for option in base) if recursive else ()
    entries = []
    for name in sorted(returned, key=_inbox_first):
        attributes: list[str] = []
        if name not in mailboxes:
            attributes.append(nonexistent)
        attributes.append("\\HasChildren" if name in children else "\\HasNoChildren")
        special_use = mailboxes.get(name)
        if special_use:
            attributes.append(special_use)
        if show_subscribed and name in subscribed:
            attributes.append("\\Subscribed")
        entries.append(
            ListEntry(
                name=name,
                attributes=tuple(attributes),
                child_info=child_info if name in with_meeting_child else (),
            )
        )
    return entries


def lsub_entries(*, subscribed: Collection[str], reference: str, pattern: str) -> list[ListEntry]:
    """The LSUB responses (RFC 3501 §6.3.9), INBOX first, then by name.

    Every subscribed name that matches is returned, whether or not a mailbox of that name exists: the
    server does not drop subscriptions, and LSUB's attributes are not LIST's (RFC 5258 §3.1 gives \\Noselect
    in LSUB the meaning "not subscribed itself"), so a subscribed name has none, as Dovecot answers. When the
    pattern ends in "%", a name the pattern matches that is not subscribed but is above a subscribed name the
    pattern does not match is returned as \\Noselect.
    """
    regex = pattern_regex(reference, pattern)
    entries = {name: ListEntry(name=name, attributes=()) for name in subscribed if regex.match(name)}
    if pattern.endswith("%"):
        for name in subscribed:
            if name in entries:
                continue
            for superior in _superiors(name):
                if superior not in entries and superior not in subscribed and regex.match(superior):
                    entries[superior] = ListEntry(name=superior, attributes=("\\Noselect",))
    return [entries[name] for name in sorted(entries, key=_inbox_first)]
