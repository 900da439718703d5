"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §2.2, §2.3) and the `thread-list` rendering.

Theory of operation: the THREAD handler builds one `ThreadMessage` per searched message (references already
parsed, base subject already extracted, sent date already defaulted to the internal date) and calls one of
the algorithms, which return an immutable forest of `ThreadNode`s; `render_threads` turns it into the
`* THREAD` payload. REFERENCES works on mutable `_Container`s, as the RFC's description does, and every tree
walk is iterative: reply chains thousands deep must not exhaust the Python stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from kittiwake.proto.imap.sort_keys import ascii_casemap


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadMessage:
    """What threading needs of one message."""

    number: int  # sequence number, or UID for UID THREAD
    message_id: str | None  # None when the message has no valid Message-ID
    # RFC 5256 §2.2: the References ids, or else the first In-Reply-To id; empty when neither is valid.
    references: tuple[str, ...]
    base_subject: str  # RFC 5256 §2.1
    is_reply_or_forward: bool  # RFC 5256 §2.1, from base subject extraction
    sent_date: datetime  # timezone-aware; the internal date when Date is missing or unparsable


@dataclass(frozen=True, slots=True)
class ThreadNode:
    """One node of a thread tree: a message number, or None for a dummy that only groups its children."""

    number: int | None
    children: tuple[ThreadNode, ...] = ()


def _date_key(message: ThreadMessage) -> tuple[datetime, int]:
    # RFC 5256 §2.2: equal sent dates keep mailbox (sequence) order.
    return message.sent_date, message.number


def thread_ordered_subject(messages: Iterable[ThreadMessage]) -> tuple[ThreadNode, ...]:
    """RFC 5256 §2.3 ORDEREDSUBJECT: one thread per base subject, the first message at the root.

    Later messages of a thread are children of the first; there are no grandchildren.
    """
    ordered = sorted(messages, key=lambda message: (ascii_casemap(message.base_subject), *_date_key(message)))
    threads: list[tuple[ThreadMessage, list[ThreadMessage]]] = []
    previous_subject: bytes | None = None
    for message in ordered:
        subject = ascii_casemap(message.base_subject)
        if subject == previous_subject:
            threads[-1][1].append(message)
        else:
            threads.append((message, []))
            previous_subject = subject
    threads.sort(key=lambda thread: _date_key(thread[0]))
    return tuple(
        ThreadNode(first.number, tuple(ThreadNode(reply.number) for reply in replies))
        for first, replies in threads
    )


class _Container:
    """A message (or a dummy standing for a referenced but absent one) with its mutable thread links."""

    __slots__ = ("children", "message", "parent")

    def __init__(self, message: ThreadMessage | None) -> None:
        self.message = message
        self.parent: _Container | None = None
        self.children: list[_Container] = []

    def is_ancestor_of(self, other: _Container) -> bool:
        node: _Container | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False

    def unlink(self) -> None:
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def adopt(self, child: _Container) -> None:
        child.parent = self
        self.children.append(child)


def _would_loop(parent: _Container, child: _Container) -> bool:
    # RFC 5256 §2.2 (1)(A): before making A the parent of B, make sure A is not a descendant of B.
    return child.is_ancestor_of(parent)


def thread_references(messages: Iterable[ThreadMessage]) -> tuple[ThreadNode, ...]:
    """RFC 5256 §2.2 REFERENCES: link by Message-ID/References, prune dummies, merge by subject, sort."""
    containers = _link_messages(sorted(messages, key=lambda message: message.number))
    roots = [container for container in containers if container.parent is None]
    roots = _prune_dummies(roots)
    _sort_siblings(roots)
    roots = _merge_by_subject(roots)
    for container in _post_order(roots):
        _sort_siblings(container.children)
    _sort_siblings(roots)
    return _freeze(roots)


def _link_messages(messages: list[ThreadMessage]) -> list[_Container]:
    """RFC 5256 §2.2 step (1); returns every container, messages and dummies, in creation order."""
    by_id: dict[str, _Container] = {}
    containers: list[_Container] = []

    def lookup(message_id: str) -> _Container:
        container = by_id.get(message_id)
        if container is None:
            container = by_id[message_id] = _Container(None)
            containers.append(container)
        return container

    for message in messages:
        container = _container_for(message, by_id, containers)
        # (1)(A): link each reference to the next, unless the child already has a parent or it would loop.
        previous: _Container | None = None
        for reference in message.references:
            current = lookup(reference)
            linkable = previous is not None and current.parent is None and current is not previous
            if linkable and previous is not None and not _would_loop(previous, current):
                previous.adopt(current)
            previous = current
        # (1)(B): the last reference becomes the parent, replacing a link from a truncated References.
        container.unlink()
        if previous is not None and previous is not container and not _would_loop(previous, container):
            previous.adopt(container)
    return containers


def _container_for(
    message: ThreadMessage, by_id: dict[str, _Container], containers: list[_Container]
) -> _Container:
    # RFC 5256 §2.2 (1): a missing or duplicate Message-ID gets a unique one; only the first message (lowest
    # number) keeps a duplicated id, so later duplicates get a container no reference can reach.
    if message.message_id is not None:
        existing = by_id.get(message.message_id)
        if existing is None:
            container = by_id[message.message_id] = _Container(message)
            containers.append(container)
            return container
        if existing.message is None:
            existing.message = message
            return existing
    container = _Container(message)
    containers.append(container)
    return container


def _post_order(roots: Iterable[_Container]) -> Iterator[_Container]:
    """Every container under `roots`, each after all of its descendants."""
    stack: list[tuple[_Container, bool]] = [(root, False) for root in reversed(list(roots))]
    while stack:
        container, expanded = stack.pop()
        if expanded:
            yield container
            continue
        stack.append((container, True))
        stack.extend((child, False) for child in reversed(container.children))


def _prune_dummies(roots: list[_Container]) -> list[_Container]:
    """RFC 5256 §2.2 step (3): delete childless dummies and splice other dummies' children into their place.

    Children are promoted to the root only when the dummy has just one, so a root dummy keeps grouping
    siblings that share a missing parent.
    """
    for container in list(_post_order(roots)):
        container.children = _spliced(container, container.children)
    new_roots: list[_Container] = []
    for root in roots:
        if root.message is not None or len(root.children) > 1:
            new_roots.append(root)
        elif root.children:
            child = root.children[0]
            child.parent = None
            new_roots.append(child)
    return new_roots


def _spliced(parent: _Container, children: list[_Container]) -> list[_Container]:
    result: list[_Container] = []
    for child in children:
        if child.message is not None:
            result.append(child)
            continue
        # Post-order: the dummy's own children are already pruned, so they hold no dummies.
        for grandchild in child.children:
            grandchild.parent = parent
            result.append(grandchild)
    return result


def _sort_key(container: _Container) -> tuple[datetime, int]:
    # RFC 5256 §2.2 (4), (6): a dummy sorts by its first child, whose children are sorted before it.
    message = container.message
    while message is None:
        container = container.children[0]
        message = container.message
    return _date_key(message)


def _sort_siblings(siblings: list[_Container]) -> None:
    for container in siblings:
        if container.message is None:
            container.children.sort(key=_sort_key)
    siblings.sort(key=_sort_key)


def _thread_subject(container: _Container) -> ThreadMessage:
    # RFC 5256 §2.2 (5)(B)(i): a dummy's subject is its first child's.
    message = container.message
    while message is None:
        container = container.children[0]
        message = container.message
    return message


def _merge_by_subject(roots: list[_Container]) -> list[_Container]:
    """RFC 5256 §2.2 step (5): gather root threads that share a base subject."""
    table = _subject_table(roots)
    merged: list[_Container] = list(roots)
    position = {id(container): index for index, container in enumerate(merged)}
    removed: set[int] = set()
    for current in roots:
        # A root already merged, or moved under a new dummy, is no longer a root of its own.
        if id(current) in removed or current.parent is not None:
            continue
        subject = ascii_casemap(_thread_subject(current).base_subject)
        if not subject:
            continue
        chosen = table[subject]
        if chosen is current:
            continue
        removed.add(id(current))
        dummy = _merge_pair(chosen, current)
        if dummy is not None:
            index = position[id(chosen)]
            merged[index] = dummy
            position[id(dummy)] = index
            table[subject] = dummy
    return [container for container in merged if id(container) not in removed and container.parent is None]


def _merge_pair(chosen: _Container, current: _Container) -> _Container | None:
    """RFC 5256 §2.2 (5)(C): merge `current` into the table's `chosen`; returns a new dummy taking its place."""
    if chosen.message is None and current.message is None:
        for child in current.children:
            chosen.adopt(child)
        current.children = []
        return None
    if chosen.message is None or (_is_reply(current) and not _is_reply(chosen)):
        chosen.adopt(current)
        return None
    dummy = _Container(None)
    dummy.adopt(chosen)
    dummy.adopt(current)
    return dummy


def _is_reply(container: _Container) -> bool:
    return container.message is not None and container.message.is_reply_or_forward


def _subject_table(roots: list[_Container]) -> dict[bytes, _Container]:
    """RFC 5256 §2.2 (5)(B): one root per base subject, preferring dummies, then non-replies."""
    table: dict[bytes, _Container] = {}
    for current in roots:
        subject = ascii_casemap(_thread_subject(current).base_subject)
        if not subject:
            continue
        existing = table.get(subject)
        if existing is None or _prefer(current, over=existing):
            table[subject] = current
    return table


def _prefer(current: _Container, *, over: _Container) -> bool:
    # RFC 5256 §2.2 (5)(B)(iii): a dummy wins over a message; a non-reply wins over a reply.
    if over.message is None:
        return False
    return current.message is None or (over.message.is_reply_or_forward and not _is_reply(current))


def _freeze(roots: list[_Container]) -> tuple[ThreadNode, ...]:
    nodes: dict[int, ThreadNode] = {}
    for container in _post_order(roots):
        number = None if container.message is None else container.message.number
        children = tuple(nodes.pop(id(child)) for child in container.children)
        nodes[id(container)] = ThreadNode(number, children)
    return tuple(nodes[id(root)] for root in roots)


def render_threads(threads: Iterable[ThreadNode]) -> bytes:
    """The RFC 5256 §4 `thread-list`s of a forest, e.g. `(2)(3 6 (4 23)(44 7 96))`; b"" for no threads.

    A chain of single children is written as numbers separated by spaces; a node with several children is
    followed by one parenthesised list per child; a dummy contributes no number.
    """
    out: list[bytes] = []
    stack: list[ThreadNode | bytes] = []
    for root in reversed(list(threads)):
        stack.extend((b")", root, b"("))
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
            continue
        node = item
        numbers: list[bytes] = []
        while True:
            if node.number is not None:
                numbers.append(b"%d" % node.number)
            if len(node.children) != 1:
                break
            node = node.children[0]
        out.append(b" ".join(numbers))
        if node.children:
            if numbers:
                out.append(b" ")
            for child in reversed(node.children):
                stack.extend((b")", child, b"("))
    return b"".join(out)
