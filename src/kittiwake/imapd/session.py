"""ImapSession: the state of one IMAP connection that handlers read and change.

Handlers never touch sockets; they reach the connection through `session.io` (write a response now, read a
line for a SASL exchange, wait during IDLE), which the server supplies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kittiwake.auth.authenticator import Authenticator
from kittiwake.imapd.selected import SelectedMailbox
from kittiwake.proto.imap.responses import Response
from kittiwake.proto.imap.states import ConnectionState
from kittiwake.store.errors import MailboxNotFound
from kittiwake.store.interface import Store
from kittiwake.store.models import Account, Mailbox


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapSettings:
    hostname: str
    append_limit: int
    idle_timeout: float
    login_timeout: float
    inline_max: int
    starttls_available: bool  # the listener offers STARTTLS (port 143)


class ConnectionIO(Protocol):
    """What handlers may ask of the connection beyond returning responses."""

    async def send(self, response: Response) -> None: ...
    async def flush(self) -> None: ...
    async def read_line(self) -> bytes: ...
    async def idle(self, session: ImapSession) -> bool: ...  # True when the client ended IDLE with DONE
    async def start_tls(self) -> bool: ...
    async def start_compression(self) -> None: ...
    def spooled_literal(self, index: int) -> object: ...  # a finished APPEND literal: delivery.spool.Spool


# RFC 9051 §7.2.2 and the extensions we implement. Each is listed only when it really works.
BASE_CAPABILITIES = (
    "IMAP4rev1",
    "IMAP4rev2",
    "LITERAL+",
    "SASL-IR",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UNSELECT",
    "UIDPLUS",
    "MOVE",
    "ID",
    "CHILDREN",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "STATUS=SIZE",
    "ESEARCH",
    "SEARCHRES",
    "CONDSTORE",
    "QRESYNC",
    "BINARY",
    "MULTIAPPEND",
    "UTF8=ACCEPT",
    "QUOTA",
    "QUOTA=RES-STORAGE",
    "QUOTA=RES-MESSAGE",
    "SORT",
    "SORT=DISPLAY",
    "THREAD=REFERENCES",
    "THREAD=ORDEREDSUBJECT",
    "COMPRESS=DEFLATE",
)


class ImapSession:
    def __init__(
        self,
        *,
        settings: ImapSettings,
        store: Store,
        authenticator: Authenticator,
        io: ConnectionIO,
        client_ip: str,
        tls_active: bool,
    ) -> None:
        self.settings = settings
        self.store = store
        self.authenticator = authenticator
        self.io = io
        self.client_ip = client_ip
        self.tls_active = tls_active
        self.state = ConnectionState.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.selected: SelectedMailbox | None = None
        self.enabled: set[str] = set()
        self.condstore_used = False  # RFC 7162 §3.1: a CONDSTORE-enabling command was seen
        self.saved_search: tuple[int, ...] = ()  # RFC 5182 SEARCHRES `$`, as UIDs
        self.compressed = False

    @property
    def utf8(self) -> bool:
        """Mailbox names and quoted strings in UTF-8 (RFC 9051 §5.1, RFC 6855)."""
        return bool(self.enabled & {"IMAP4REV2", "UTF8=ACCEPT"})

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def condstore(self) -> bool:
        return self.condstore_used or bool(self.enabled & {"CONDSTORE", "QRESYNC"})

    def capabilities(self) -> list[str]:
        caps = list(BASE_CAPABILITIES)
        caps.append(f"APPENDLIMIT={self.settings.append_limit}")
        if self.state is ConnectionState.NOT_AUTHENTICATED:
            if self.settings.starttls_available and not self.tls_active:
                caps.append("STARTTLS")
            if self.tls_active:
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")  # RFC 9051 §6.2.3: no passwords over plaintext
        if self.compressed:
            caps.remove("COMPRESS=DEFLATE")
        return caps

    def account_id(self) -> int:
        assert self.account is not None, "handler ran before authentication"
        return self.account.id

    def require_selected(self) -> SelectedMailbox:
        assert self.selected is not None, "handler ran without a selected mailbox"
        return self.selected

    async def claim_recent(self, selected: SelectedMailbox, row: Mailbox | None = None) -> None:
        """Settle which of the messages the session has heard of are \\Recent in it; call before announcing
        them. RFC 3501 §2.3.2: a message is recent in the first session to be notified of it, and when
        that session is read-write, later sessions do not see it so; the store hands each UID to one
        claiming session only. A read-only session (EXAMINE) sees the unclaimed ones as recent without
        claiming them (RFC 3501 §6.3.2). An IMAP4rev2 session claims too, so a later IMAP4rev1 session does
        not see as recent what it was told of first, but never shows \\Recent itself.

        `row`, the mailbox as SELECT just read it, answers without another read when it covers every UID
        the session holds: either nothing in it is unclaimed, or the session only looks (EXAMINE)."""
        newest = selected.newest_uid
        if newest < selected.recent_known_below:
            return
        unclaimed = row is not None and row.first_recent_uid < row.uid_next
        if row is not None and newest < row.uid_next and (selected.read_only or not unclaimed):
            selected.note_recent(row.first_recent_uid, row.uid_next)
            return
        try:
            if selected.read_only:
                selected.note_recent(await self.store.first_recent_uid(selected.id), newest + 1)
            else:
                first, end = await self.store.claim_recent(selected.id)
                selected.note_recent(first, end)
        except MailboxNotFound:
            return  # deleted meanwhile: nothing in it is left to claim, and its messages are reported gone

    def recent_in(self, mailbox: Mailbox) -> int:
        """STATUS RECENT (RFC 3501 §6.3.10): in the selected mailbox, the messages recent in this session;
        elsewhere, those no session has claimed. STATUS claims nothing. IMAP4rev2 has no \\Recent."""
        if self.rev2:
            return 0
        selected = self.selected
        if selected is not None and selected.id == mailbox.id:
            return selected.recent_count()
        return mailbox.recent

    def unselect(self) -> None:
        if self.selected is not None:
            self.store.changes.unsubscribe_mailbox(self.selected.id, self.selected.on_change)
            self.selected = None
