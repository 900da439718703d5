"""Parse a framed `RawCommand` into a command dataclass (RFC 9051 §9 grammar and the extensions' ABNF).

`parse_command` raises `ParseError` (answer `tag BAD text`) for any grammar error, and nothing else; two
kinds of it are answered NO: `BadCharset`, and `MailboxNameRefused` for a mailbox name that is well formed
but cannot be accepted (RFC 9051 §5.1). String arguments stay `bytes` until a rule says how to decode them:
mailbox names through `mailbox_names`, search strings through the command's CHARSET.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import fetch_items as f
from kittiwake.proto.imap import search_keys as s
from kittiwake.proto.imap.command_reader import MAX_NUMBER64, CommandReader
from kittiwake.proto.imap.errors import MailboxNameError, MailboxNameRefused, ParseError
from kittiwake.proto.imap.mailbox_names import DELIMITER, check_mailbox_name
from kittiwake.proto.imap.receiver import Literal, RawCommand

_TAG = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\+\x80-\xff]+\Z')  # RFC 9051 §9: ASTRING-CHAR except "+"
_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")
# RFC 9051 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz", day space-padded or two digits.
_DATE_TIME = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)

Parser = Callable[[CommandReader, bool], c.Command]


def parse_command(raw: RawCommand, *, utf8: bool = False) -> c.Command:
    """Parse one command; raise `ParseError` (answer `tag BAD text`), or one of its kinds answered NO:
    `BadCharset`, or `MailboxNameRefused` for a well-formed command naming a mailbox it cannot accept.

    `utf8` is True once the client enabled IMAP4rev2 or UTF8=ACCEPT: mailbox names are then UTF-8 instead
    of modified UTF-7 (RFC 9051 §5.1, RFC 6855 §3).
    """
    if not _TAG.match(raw.tag):
        raise ParseError("*", "invalid tag")
    tag = raw.tag.decode("ascii")
    reader = CommandReader(tag, raw.args, utf8)
    name, uid = raw.name, False
    if name == b"UID":
        reader.sp()
        name, uid = reader.atom().upper(), True
        if name not in _UID_COMMANDS:
            raise reader.fail("unknown UID command")
    parser = _PARSERS.get(name)
    if parser is None:
        raise reader.fail("unknown command")
    command = parser(reader, uid)
    reader.end()
    if reader.refused_name is not None:
        text, creating = reader.refused_name
        raise MailboxNameRefused(tag, text, command=command, creating=creating)
    return command


def _no_arguments(command: type[c.Command]) -> Parser:
    def parse(r: CommandReader, uid: bool) -> c.Command:
        return command(tag=r.tag)

    return parse


# Authentication and session (RFC 9051 §6.1, §6.2, RFC 5161, RFC 2971, RFC 4978).


def _parse_authenticate(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    mechanism = r.keyword()
    initial: bytes | None = None
    if r.accept(b" "):
        # RFC 4959 §3: "=" stands for an empty initial response.
        initial = b"" if r.accept(b"=") else r.atom()
        if not initial and not r.at_end():
            raise r.fail("bad initial response")
        if initial and not _BASE64.match(initial):
            raise r.fail("initial response is not base64")
    return c.Authenticate(tag=r.tag, mechanism=mechanism, initial_response=initial)


def _parse_login(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    username = r.astring()
    r.sp()
    return c.Login(tag=r.tag, username=username, password=r.astring())


def _parse_enable(r: CommandReader, uid: bool) -> c.Command:
    capabilities: list[str] = []
    r.sp()
    capabilities.append(r.keyword())
    while r.accept(b" "):
        capabilities.append(r.keyword())
    return c.Enable(tag=r.tag, capabilities=tuple(capabilities))


def _parse_id(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    if r.accept(b"NIL"):
        return c.Id(tag=r.tag, parameters=None)
    pairs: list[tuple[str, str | None]] = []

    def pair() -> None:
        field = r.text(r.string())
        r.sp()
        value = r.nstring()
        pairs.append((field, None if value is None else r.text(value)))

    r.parenthesised(pair, allow_empty=True)
    return c.Id(tag=r.tag, parameters=tuple(pairs))


def _parse_compress(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    return c.Compress(tag=r.tag, mechanism=r.keyword())


# Mailboxes (RFC 9051 §6.3, RFC 7162, RFC 6154, RFC 5258, RFC 5819, RFC 3502, RFC 6855, RFC 9208).


def _parse_select(r: CommandReader, uid: bool) -> c.Command:
    return _parse_select_like(r, c.Select)


def _parse_examine(r: CommandReader, uid: bool) -> c.Command:
    return _parse_select_like(r, c.Examine)


def _parse_select_like(r: CommandReader, command: type[c.Select] | type[c.Examine]) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    condstore = False
    qresync: c.QresyncParameters | None = None
    if r.accept(b" "):

        def parameter() -> None:
            nonlocal condstore, qresync
            name = r.keyword()
            if name == "CONDSTORE" and not condstore:
                condstore = True
            elif name == "QRESYNC" and qresync is None:
                r.sp()
                qresync = _parse_qresync(r)
            else:
                raise r.fail(f"unknown or repeated SELECT parameter {name}")

        r.parenthesised(parameter)
    return command(tag=r.tag, mailbox=mailbox, condstore=condstore, qresync=qresync)


def _parse_qresync(r: CommandReader) -> c.QresyncParameters:
    """RFC 7162 §3.2.5: "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"."""
    r.expect(b"(")
    uid_validity = r.number(nonzero=True)
    r.sp()
    modseq = r.number(limit=MAX_NUMBER64, nonzero=True)
    known_uids = known_numbers = known_number_uids = None
    if r.accept(b" ") and r.peek() != b"(":
        known_uids = r.sequence_set()
        if not r.accept(b" "):
            r.expect(b")")
            return c.QresyncParameters(uid_validity=uid_validity, modseq=modseq, known_uids=known_uids)
    if r.accept(b"("):
        known_numbers = r.sequence_set()
        r.sp()
        known_number_uids = r.sequence_set()
        r.expect(b")")
    r.expect(b")")
    return c.QresyncParameters(
        uid_validity=uid_validity,
        modseq=modseq,
        known_uids=known_uids,
        known_sequence_numbers=known_numbers,
        known_sequence_uids=known_number_uids,
    )


def _new_mailbox(r: CommandReader) -> str:
    """A name to create: RFC 9051 §6.3.4 drops one trailing delimiter, then the name must be valid.

    A name that is well formed but unacceptable (RFC 9051 §5.1) is refused with NO [CANNOT], not BAD.
    """
    name = r.mailbox(creating=True)
    if name.endswith(DELIMITER) and name != DELIMITER:
        name = name[: -len(DELIMITER)]
    if r.refused_name is None:
        try:
            check_mailbox_name(name, creating=True)
        except MailboxNameError as exc:
            r.refuse_name(str(exc), creating=True)
    return name


def _parse_create(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    mailbox = _new_mailbox(r)
    uses: list[str] = []
    if r.accept(b" "):

        def parameter() -> None:
            if r.keyword() != "USE":
                raise r.fail("unknown CREATE parameter")
            r.sp()
            r.parenthesised(lambda: uses.append(_use_attribute(r)), allow_empty=True)

        r.parenthesised(parameter)
    return c.Create(tag=r.tag, mailbox=mailbox, special_use=tuple(uses))


def _use_attribute(r: CommandReader) -> str:
    """RFC 6154 §6: use-attr is a backslash and an atom."""
    flag = r.flag()
    if not flag.startswith("\\"):
        raise r.fail("special-use attribute expected")
    return flag


def _parse_rename(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return c.Rename(tag=r.tag, mailbox=mailbox, new_name=_new_mailbox(r))


def _one_mailbox(
    command: type[c.Delete] | type[c.Subscribe] | type[c.Unsubscribe] | type[c.GetQuotaRoot],
) -> Parser:
    def parse(r: CommandReader, uid: bool) -> c.Command:
        r.sp()
        return command(tag=r.tag, mailbox=r.mailbox())

    return parse


_SELECTION_OPTIONS = {option.value: option for option in c.ListSelection}


def _parse_list(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    selection: set[c.ListSelection] = set()
    extended = False
    if r.peek() == b"(":
        extended = True

        def option() -> None:
            name = r.keyword()
            if name not in _SELECTION_OPTIONS:
                raise r.fail(f"unknown LIST selection option {name}")
            selection.add(_SELECTION_OPTIONS[name])

        r.parenthesised(option, allow_empty=True)
        r.sp()
    # RFC 5258 §3.1: RECURSIVEMATCH needs an option other than itself (and REMOTE, which selects no
    # mailboxes by itself) to match against; alone, or with REMOTE only, it is an error.
    if (
        selection
        and selection <= {c.ListSelection.RECURSIVEMATCH, c.ListSelection.REMOTE}
        and (c.ListSelection.RECURSIVEMATCH in selection)
    ):
        raise r.fail("RECURSIVEMATCH needs another selection option")
    reference = r.list_mailbox()
    r.sp()
    patterns: list[str] = []
    if r.peek() == b"(":
        extended = True
        r.parenthesised(lambda: patterns.append(r.list_mailbox()))
    else:
        patterns.append(r.list_mailbox())
    returns = c.ListReturn()
    if r.accept(b" "):
        r.expect(b"RETURN")
        r.sp()
        returns = _parse_list_return(r)
        extended = True
    return c.List(
        tag=r.tag,
        reference=reference,
        patterns=tuple(patterns),
        selection=frozenset(selection),
        returns=returns,
        extended=extended,
    )


def _parse_list_return(r: CommandReader) -> c.ListReturn:
    """RFC 5258 §3.2 return options, with RFC 5819 STATUS and RFC 6154 SPECIAL-USE."""
    options: dict[str, bool] = {}
    status: tuple[c.StatusItem, ...] | None = None

    def option() -> None:
        nonlocal status
        name = r.keyword()
        if name == "STATUS" and status is None:
            r.sp()
            status = _parse_status_items(r)
        elif name in ("CHILDREN", "SUBSCRIBED", "SPECIAL-USE"):
            options[name] = True
        else:
            raise r.fail(f"unknown LIST return option {name}")

    r.parenthesised(option, allow_empty=True)
    return c.ListReturn(
        children=options.get("CHILDREN", False),
        subscribed=options.get("SUBSCRIBED", False),
        special_use=options.get("SPECIAL-USE", False),
        status=status,
    )


def _parse_lsub(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    reference = r.list_mailbox()
    r.sp()
    return c.Lsub(tag=r.tag, reference=reference, pattern=r.list_mailbox())


_STATUS_ITEMS = {item.value: item for item in c.StatusItem}


def _parse_status_items(r: CommandReader) -> tuple[c.StatusItem, ...]:
    items: list[c.StatusItem] = []

    def item() -> None:
        name = r.keyword()
        if name not in _STATUS_ITEMS:
            raise r.fail(f"unknown STATUS item {name}")
        items.append(_STATUS_ITEMS[name])

    r.parenthesised(item)
    return tuple(items)


def _parse_status(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return c.Status(tag=r.tag, mailbox=mailbox, items=_parse_status_items(r))


def _parse_append(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    messages = [_parse_append_message(r)]
    while not r.at_end():
        messages.append(_parse_append_message(r))
    return c.Append(tag=r.tag, mailbox=mailbox, messages=tuple(messages))


def _parse_append_message(r: CommandReader) -> c.AppendMessage:
    """RFC 3502 append-message: [SP flag-list] [SP date-time] SP append-data."""
    r.sp()
    flags: tuple[str, ...] = ()
    internal_date: datetime.datetime | None = None
    if r.peek() == b"(":
        flags = r.flag_list()
        r.sp()
    if r.peek() == b'"':
        internal_date = _parse_date_time(r)
        r.sp()
    utf8 = r.accept(b"UTF8 (")
    literal = r.literal()
    if utf8:
        # RFC 6855 §4: the UTF8 form always carries a literal8.
        if not literal.binary:
            raise r.fail("UTF8 APPEND data must be a literal8")
        r.expect(b")")
    content = literal.data if isinstance(literal, Literal) else literal
    return c.AppendMessage(
        flags=flags, internal_date=internal_date, content=content, binary=literal.binary, utf8=utf8
    )


def _parse_date_time(r: CommandReader) -> datetime.datetime:
    found = r.match(_DATE_TIME, "date-time")
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = found.groups()
    try:
        offset = datetime.timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
        zone = datetime.timezone(-offset if sign == b"-" else offset)
        return datetime.datetime(
            int(year), r.month(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError:
        raise r.fail("invalid date-time") from None


def _parse_getquota(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    return c.GetQuota(tag=r.tag, root=r.text(r.astring()))


def _parse_setquota(r: CommandReader, uid: bool) -> c.Command:
    """RFC 9208 §4.1.3: SETQUOTA quota-root-name "(" [resource-name SP number64 *(...)] ")"."""
    r.sp()
    root = r.text(r.astring())
    r.sp()
    limits: list[tuple[str, int]] = []

    def resource() -> None:
        name = r.keyword()
        r.sp()
        limits.append((name, r.number(limit=MAX_NUMBER64)))

    r.parenthesised(resource, allow_empty=True)
    return c.SetQuota(tag=r.tag, root=root, limits=tuple(limits))


# Selected state (RFC 9051 §6.4, RFC 4731, RFC 5182, RFC 7162, RFC 6851, RFC 5256).


def _parse_expunge(r: CommandReader, uid: bool) -> c.Command:
    if not uid:
        return c.Expunge(tag=r.tag)
    r.sp()
    return c.Expunge(tag=r.tag, uid=True, sequence_set=r.sequence_set())


def _parse_copy(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    sequence_set = r.sequence_set()
    r.sp()
    return c.Copy(tag=r.tag, uid=uid, sequence_set=sequence_set, mailbox=r.mailbox())


def _parse_move(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    sequence_set = r.sequence_set()
    r.sp()
    return c.Move(tag=r.tag, uid=uid, sequence_set=sequence_set, mailbox=r.mailbox())


def _parse_store(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    sequence_set = r.sequence_set()
    r.sp()
    unchanged_since: int | None = None
    if r.accept(b"("):
        # RFC 7162 §3.1.3: store-modifier "UNCHANGEDSINCE" SP mod-sequence-valzer.
        r.expect(b"UNCHANGEDSINCE ")
        unchanged_since = r.number(limit=MAX_NUMBER64)
        r.expect(b")")
        r.sp()
    mode = c.StoreMode.REPLACE
    if r.accept(b"+"):
        mode = c.StoreMode.ADD
    elif r.accept(b"-"):
        mode = c.StoreMode.REMOVE
    r.expect(b"FLAGS")
    silent = r.accept(b".SILENT")
    r.sp()
    if r.peek() == b"(":
        flags = r.flag_list()
    else:
        words = [r.flag()]
        while r.accept(b" "):
            words.append(r.flag())
        flags = tuple(words)
    return c.Store(
        tag=r.tag,
        uid=uid,
        sequence_set=sequence_set,
        mode=mode,
        silent=silent,
        flags=flags,
        unchanged_since=unchanged_since,
    )


def _parse_fetch(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    sequence_set = r.sequence_set()
    r.sp()
    items: list[f.FetchItem] = []
    if r.peek() == b"(":
        r.parenthesised(lambda: items.extend(f.parse_fetch_item(r)))
    else:
        items.extend(f.parse_fetch_item(r, macros=True))
    changed_since: int | None = None
    vanished = False
    if r.accept(b" "):

        def modifier() -> None:
            nonlocal changed_since, vanished
            name = r.keyword()
            if name == "CHANGEDSINCE" and changed_since is None:
                r.sp()
                changed_since = r.number(limit=MAX_NUMBER64)
            elif name == "VANISHED" and uid and not vanished:
                vanished = True
            else:
                raise r.fail(f"unknown or repeated FETCH modifier {name}")

        r.parenthesised(modifier)
        # RFC 7162 §3.2.6: VANISHED without CHANGEDSINCE is a BAD.
        if vanished and changed_since is None:
            raise r.fail("VANISHED needs CHANGEDSINCE")
    return c.Fetch(
        tag=r.tag,
        uid=uid,
        sequence_set=sequence_set,
        items=tuple(items),
        changed_since=changed_since,
        vanished=vanished,
    )


_SEARCH_RETURNS = {option.value: option for option in s.SearchReturn}


def _parse_search(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    returns: tuple[s.SearchReturn, ...] | None = None
    if r.accept(b"RETURN "):
        options: list[s.SearchReturn] = []

        def option() -> None:
            name = r.keyword()
            if name not in _SEARCH_RETURNS:
                raise r.fail(f"unknown SEARCH return option {name}")
            options.append(_SEARCH_RETURNS[name])

        r.parenthesised(option, allow_empty=True)
        r.sp()
        returns = tuple(options)
    charset: str | None = None
    if r.accept(b"CHARSET "):
        charset = s.parse_charset(r)
        r.sp()
    criteria = s.parse_search_keys(r, charset)
    return c.Search(tag=r.tag, uid=uid, charset=charset, criteria=criteria, returns=returns)


_SORT_KEYS = {key.value: key for key in s.SortKey}


def _parse_sort(r: CommandReader, uid: bool) -> c.Command:
    """RFC 5256 §5: SORT sort-criteria SP charset 1*(SP search-key)."""
    r.sp()
    criteria: list[s.SortCriterion] = []

    def criterion() -> None:
        reverse = r.accept(b"REVERSE ")
        name = r.keyword()
        if name not in _SORT_KEYS:
            raise r.fail(f"unknown sort key {name}")
        criteria.append(s.SortCriterion(key=_SORT_KEYS[name], reverse=reverse))

    r.parenthesised(criterion)
    r.sp()
    charset = s.parse_charset(r)
    r.sp()
    search = s.parse_search_keys(r, charset)
    return c.Sort(tag=r.tag, uid=uid, criteria=tuple(criteria), charset=charset, search=search)


_THREAD_ALGORITHMS = {algorithm.value: algorithm for algorithm in s.ThreadAlgorithm}


def _parse_thread(r: CommandReader, uid: bool) -> c.Command:
    r.sp()
    name = r.keyword()
    if name not in _THREAD_ALGORITHMS:
        raise r.fail(f"unknown thread algorithm {name}")
    r.sp()
    charset = s.parse_charset(r)
    r.sp()
    search = s.parse_search_keys(r, charset)
    return c.Thread(tag=r.tag, uid=uid, algorithm=_THREAD_ALGORITHMS[name], charset=charset, search=search)


_PARSERS: dict[bytes, Parser] = {
    b"CAPABILITY": _no_arguments(c.Capability),
    b"NOOP": _no_arguments(c.Noop),
    b"LOGOUT": _no_arguments(c.Logout),
    b"STARTTLS": _no_arguments(c.StartTls),
    b"AUTHENTICATE": _parse_authenticate,
    b"LOGIN": _parse_login,
    b"ENABLE": _parse_enable,
    b"ID": _parse_id,
    b"COMPRESS": _parse_compress,
    b"SELECT": _parse_select,
    b"EXAMINE": _parse_examine,
    b"CREATE": _parse_create,
    b"DELETE": _one_mailbox(c.Delete),
    b"RENAME": _parse_rename,
    b"SUBSCRIBE": _one_mailbox(c.Subscribe),
    b"UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    b"LIST": _parse_list,
    b"LSUB": _parse_lsub,
    b"NAMESPACE": _no_arguments(c.Namespace),
    b"STATUS": _parse_status,
    b"APPEND": _parse_append,
    b"IDLE": _no_arguments(c.Idle),
    b"GETQUOTA": _parse_getquota,
    b"GETQUOTAROOT": _one_mailbox(c.GetQuotaRoot),
    b"SETQUOTA": _parse_setquota,
    b"CHECK": _no_arguments(c.Check),
    b"CLOSE": _no_arguments(c.Close),
    b"UNSELECT": _no_arguments(c.Unselect),
    b"EXPUNGE": _parse_expunge,
    b"SEARCH": _parse_search,
    b"FETCH": _parse_fetch,
    b"STORE": _parse_store,
    b"COPY": _parse_copy,
    b"MOVE": _parse_move,
    b"SORT": _parse_sort,
    b"THREAD": _parse_thread,
}
_UID_COMMANDS = frozenset({b"COPY", b"MOVE", b"FETCH", b"SEARCH", b"STORE", b"EXPUNGE", b"SORT", b"THREAD"})
