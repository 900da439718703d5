"""The IMAP service driven by third-party clients: imapclient, imap-tools (PyPI) and mbsync (Debian isync).

The synchronous clients run in a worker thread while the server runs on the test's event loop. None of these
tests uses SEARCH, SORT or THREAD; mbsync is configured so that it never needs them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import re
import smtplib
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import imap_tools
import pytest
from imapclient import IMAPClient

from tests.service.server_harness import PASSWORD, RunningServer, running_server

T = TypeVar("T")
MBSYNC = "/usr/bin/mbsync"

# A text part and a base64 part whose decoded bytes hold no NUL, so BINARY answers with a plain literal that
# imapclient can parse (it does not read RFC 3516 literal8).
ATTACHMENT = bytes(range(1, 256))


def multipart(subject: str, to: str = "alice@example.org") -> bytes:
    encoded = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    return (
        (
            f"From: Sender <sender@elsewhere.net>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@elsewhere.net>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, "
            f"{subject}.\r\n"
            "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            'Content-Disposition: attachment; filename="data.bin"\r\n\r\n'
        ).encode()
        + encoded
        + b"--b1--\r\n"
    )


def deliver(server: RunningServer, message: bytes, to: str = "alice@example.org") -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as smtp:
        smtp.sendmail("sender@elsewhere.net", [to], message)


def simple(subject: str, to: str = "alice@example.org") -> bytes:
    return (
        f"From: sender@elsewhere.net\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nBody of {subject}.\r\n".encode()
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "server") as running:
        yield running


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)


def imapclient_session(server: RunningServer, user: str = "alice") -> IMAPClient:
    client = IMAPClient(
        "127.0.0.1", port=server.ports["imaps"], ssl=True, ssl_context=server.client_tls, timeout=20
    )
    client.normalise_times = False
    client.login(f"{user}@example.org", PASSWORD)
    return client


# imapclient


async def test_imapclient_starttls_login_list_and_select(server: RunningServer) -> None:
    def session() -> tuple[list[Any], dict[bytes, Any], tuple[bytes, ...]]:
        client = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=20)
        client.starttls(server.client_tls)
        client.login("alice@example.org", PASSWORD)
        capabilities = client.capabilities()
        folders = client.list_folders()
        selected = client.select_folder("INBOX")
        client.logout()
        return folders, selected, capabilities

    await in_thread(deliver, server, simple("one"))
    folders, selected, capabilities = await in_thread(session)
    assert b"IMAP4REV2" in capabilities and b"IDLE" in capabilities
    names = {name: flags for flags, _, name in folders}
    assert set(names) == {"INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"}
    assert b"\\Sent" in names["Sent"] and b"\\Trash" in names["Trash"]
    assert selected[b"EXISTS"] == 1 and selected[b"UIDNEXT"] == 2 and selected[b"READ-WRITE"]


async def test_imapclient_fetches_envelope_bodystructure_and_sections(server: RunningServer) -> None:
    message = multipart("parts")
    await in_thread(deliver, server, message)
    (stored,) = await server.stored_messages("alice")

    def session() -> tuple[dict[bytes, Any], dict[bytes, Any], dict[bytes, Any]]:
        client = imapclient_session(server)
        client.select_folder("INBOX")
        items = [
            "ENVELOPE",
            "BODYSTRUCTURE",
            "BODY.PEEK[1]",
            "BODY.PEEK[]<0.10>",
            "BINARY.PEEK[2]",
            "BINARY.SIZE[2]",
            "RFC822.SIZE",
            "FLAGS",
        ]
        peeked = client.fetch([1], items)[1]
        whole = client.fetch([1], ["BODY[]"])[1]
        after = client.fetch([1], ["FLAGS"])[1]
        client.logout()
        return peeked, whole, after

    peeked, whole, after = await in_thread(session)
    envelope = peeked[b"ENVELOPE"]
    assert envelope.subject == b"parts" and envelope.message_id == b"<parts@elsewhere.net>"
    assert envelope.date == datetime.datetime(2026, 11, 21, 10, 0, tzinfo=datetime.UTC)
    (sender,) = envelope.from_
    assert (sender.name, sender.mailbox, sender.host) == (b"Sender", b"sender", b"elsewhere.net")
    (text, attachment), subtype = peeked[b"BODYSTRUCTURE"][0], peeked[b"BODYSTRUCTURE"][1]
    assert subtype == b"mixed"
    assert text[:6] == (b"text", b"plain", (b"charset", b"utf-8"), None, None, b"7bit")
    assert attachment[:2] == (b"application", b"octet-stream") and attachment[5] == b"base64"
    assert peeked[b"BODY[1]"] == b"Hello, parts."
    assert peeked[b"BODY[]<0>"] == stored[:10]
    assert peeked[b"BINARY[2]"] == ATTACHMENT
    assert peeked[b"BINARY.SIZE[2]"] == len(ATTACHMENT)
    assert peeked[b"RFC822.SIZE"] == len(stored)
    # RFC 3501 §2.3.2: the session that selects the mailbox first sees its new message \Recent.
    assert peeked[b"FLAGS"] == (b"\\Recent",)
    assert whole[b"BODY[]"] == stored and stored.endswith(message)
    assert after[b"FLAGS"] == (b"\\Seen", b"\\Recent")


async def test_imapclient_flags_add_remove_and_replace(server: RunningServer) -> None:
    await in_thread(deliver, server, simple("flags"))

    def session() -> list[tuple[bytes, ...]]:
        client = imapclient_session(server)
        client.select_folder("INBOX")
        seen = [client.add_flags([1], [b"\\Flagged", b"$Important"])[1]]
        seen.append(client.remove_flags([1], [b"\\Flagged"])[1])
        seen.append(client.set_flags([1], [b"\\Answered", b"\\Seen"])[1])
        seen.append(client.get_flags([1])[1])
        client.logout()
        return seen

    added, removed, replaced, final = await in_thread(session)
    # \Recent (RFC 3501 §2.3.2: this session selected first) is no stored flag: FLAGS does not replace it.
    assert set(added) == {b"\\Flagged", b"\\Recent", b"$Important"}
    assert removed == (b"\\Recent", b"$Important")
    assert set(replaced) == {b"\\Answered", b"\\Seen", b"\\Recent"} == set(final)


async def test_imapclient_append_copy_move_and_expunge(server: RunningServer) -> None:
    appended_bytes = b"From: me@example.org\r\nSubject: draft\r\n\r\nA draft.\r\n"
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)

    def session() -> dict[str, Any]:
        client = imapclient_session(server)
        results: dict[str, Any] = {"append": client.append("Drafts", appended_bytes, (b"\\Draft",), when)}
        client.select_folder("Drafts")
        results["fetch"] = client.fetch([1], ["INTERNALDATE", "FLAGS", "BODY.PEEK[]"])[1]
        client.copy([1], "Archive")
        results["archive"] = client.folder_status("Archive", [b"MESSAGES"])
        results["move"] = client.move([1], "Trash")
        results["drafts"] = client.select_folder("Drafts")[b"EXISTS"]
        client.select_folder("Trash")
        client.add_flags([1], [b"\\Deleted"])
        results["expunge"] = client.expunge()
        results["trash"] = client.folder_status("Trash", [b"MESSAGES"])
        client.select_folder("Archive")
        client.add_flags([1], [b"\\Deleted"])
        results["uid_expunge"] = client.uid_expunge([1])
        client.logout()
        return results

    results = await in_thread(session)
    assert b"[APPENDUID" in results["append"]
    fetched = results["fetch"]
    assert fetched[b"INTERNALDATE"].astimezone(datetime.UTC) == when
    # RFC 3501 §6.3.11: an appended message is \Recent too, here in the first session to select Drafts.
    assert fetched[b"FLAGS"] == (b"\\Draft", b"\\Recent") and fetched[b"BODY[]"] == appended_bytes
    assert results["archive"][b"MESSAGES"] == 1
    assert results["drafts"] == 0
    # RFC 3501 §7.3.2: the size changed and the message was \Recent in this session, so RECENT follows.
    assert results["expunge"][1] == [(1, b"EXPUNGE"), (0, b"RECENT")]
    assert results["trash"][b"MESSAGES"] == 0
    assert await server.stored_messages("alice", "Archive") == []


async def test_imapclient_idle_reports_a_delivery(server: RunningServer) -> None:
    def session() -> list[tuple[Any, ...]]:
        client = imapclient_session(server)
        client.select_folder("INBOX")
        client.idle()
        deliver(server, simple("while idle"))
        responses = client.idle_check(timeout=10)
        client.idle_done()
        client.logout()
        return responses

    assert (1, b"EXISTS") in await in_thread(session)


async def test_imapclient_condstore_modseq_and_changedsince(server: RunningServer) -> None:
    for subject in ("a", "b"):
        await in_thread(deliver, server, simple(subject))

    def session() -> tuple[Any, int, dict[int, dict[bytes, Any]], int]:
        client = imapclient_session(server)
        enabled = client.enable("CONDSTORE")
        highest = client.select_folder("INBOX")[b"HIGHESTMODSEQ"]
        client.add_flags([2], [b"\\Flagged"])
        changed = client.fetch([1, 2], ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"])
        status = client.folder_status("Archive", [b"HIGHESTMODSEQ"])
        client.logout()
        return enabled, highest, changed, status[b"HIGHESTMODSEQ"]

    enabled, highest, changed, archive_highest = await in_thread(session)
    assert enabled == [b"CONDSTORE"]
    assert isinstance(highest, int) and highest > 0
    # RFC 7162 §3.1.4.1: CHANGEDSINCE returns only messages whose mod-sequence is above the given value.
    assert list(changed) == [2]
    assert changed[2][b"FLAGS"] == (b"\\Flagged", b"\\Recent") and changed[2][b"MODSEQ"][0] > highest
    assert isinstance(archive_highest, int)


# imap-tools


def imap_tools_session(server: RunningServer) -> imap_tools.MailBox:
    return imap_tools.MailBox("127.0.0.1", port=server.ports["imaps"], ssl_context=server.client_tls).login(
        "alice@example.org", PASSWORD
    )


async def test_imap_tools_fetches_parsed_messages_by_uid(server: RunningServer) -> None:
    await in_thread(deliver, server, multipart("tools"))

    def session() -> tuple[list[imap_tools.MailMessage], list[imap_tools.MailMessage]]:
        with imap_tools_session(server) as mailbox:
            peeked = list(mailbox.fetch(uid_list="1:*", mark_seen=False, bulk=True))
            read = list(mailbox.fetch(uid_list="1:*", bulk=True))
        return peeked, read

    (message,), (read,) = await in_thread(session)
    assert message.uid == "1" and message.subject == "tools" and message.from_ == "sender@elsewhere.net"
    assert message.text == "Hello, tools."
    assert message.date == datetime.datetime(2026, 11, 21, 10, 0, tzinfo=datetime.UTC)
    (attachment,) = message.attachments
    assert attachment.filename == "data.bin" and attachment.payload == ATTACHMENT
    assert message.flags == ("\\Recent",)  # RFC 3501 §2.3.2: the first session to select the mailbox
    # RFC 9051 §6.4.5: BODY[] (without .PEEK) sets \Seen, and the FLAGS in the same response show it.
    assert read.flags == ("\\Seen", "\\Recent")


async def test_imap_tools_marks_seen_flags_and_deletes(server: RunningServer) -> None:
    for subject in ("keep", "drop"):
        await in_thread(deliver, server, simple(subject))

    def session() -> tuple[list[tuple[str, tuple[str, ...]]], list[str], list[str]]:
        with imap_tools_session(server) as mailbox:
            mailbox.flag("1", imap_tools.MailMessageFlags.SEEN, True)
            mailbox.flag("1", [imap_tools.MailMessageFlags.FLAGGED, "$Work"], True)
            mailbox.flag("2", imap_tools.MailMessageFlags.SEEN, True)
            flagged = [
                (m.subject, m.flags) for m in mailbox.fetch(uid_list="1:*", mark_seen=False, bulk=True)
            ]
            mailbox.delete("2")
            left = [m.subject for m in mailbox.fetch(uid_list="1:*", headers_only=True, bulk=True)]
            folders = [f.name for f in mailbox.folder.list()]
        return flagged, left, folders

    flagged, left, folders = await in_thread(session)
    assert [(subject, set(flags)) for subject, flags in flagged] == [
        ("keep", {"\\Seen", "\\Flagged", "\\Recent", "$Work"}),
        ("drop", {"\\Seen", "\\Recent"}),
    ]
    assert left == ["keep"]
    assert "Archive" in folders


async def test_imap_tools_raw_client_status_and_append(server: RunningServer) -> None:
    def session() -> tuple[tuple[str, list[Any]], dict[str, int]]:
        with imap_tools_session(server) as mailbox:
            appended = mailbox.client.append("Archive", "(\\Seen)", None, simple("kept"))
            status = mailbox.folder.status("Archive")
        return appended, status

    appended, status = await in_thread(session)
    assert appended[0] == "OK"
    assert status["MESSAGES"] == 1 and status["UIDNEXT"] == 2


# mbsync (isync): two-way synchronisation with a Maildir


class Mbsync:
    """An mbsync configuration for bob's account, synchronising every folder with a Maildir tree."""

    def __init__(self, server: RunningServer, folder: Path, *, starttls: bool = False) -> None:
        self.maildir = folder / "mail"
        self.maildir.mkdir(parents=True)
        self.config = folder / "mbsyncrc"
        # Implicit TLS with LOGIN, or STARTTLS on the plain port with AUTHENTICATE PLAIN (SASL-IR).
        port, tls, mechanism = (
            (server.ports["imap"], "STARTTLS", "PLAIN")
            if starttls
            else (server.ports["imaps"], "IMAPS", "LOGIN")
        )
        # isync checks the certificate's DNS names, so the host is "localhost" (the test CA issued it).
        self.config.write_text(
            "IMAPAccount kittiwake\n"
            "Host localhost\n"
            f"Port {port}\n"
            "User bob@example.org\n"
            f'Pass "{PASSWORD}"\n'
            f"SSLType {tls}\n"
            f"AuthMechs {mechanism}\n"
            f"CertificateFile {server.ca_file}\n"
            "\n"
            "IMAPStore remote\n"
            "Account kittiwake\n"
            "\n"
            "MaildirStore local\n"
            f"Path {self.maildir}/\n"
            f"Inbox {self.maildir}/INBOX\n"
            "SubFolders Verbatim\n"
            "\n"
            "Channel everything\n"
            "Far :remote:\n"
            "Near :local:\n"
            "Patterns *\n"
            "Create Both\n"
            "Expunge Both\n"
            "SyncState *\n"
            "CopyArrivalDate yes\n"
        )
        self.commands: list[str] = []

    async def run(self) -> None:
        """Synchronise once; keep the IMAP commands mbsync sent (its -Dn network trace) in `commands`."""
        command = [MBSYNC, "-c", str(self.config), "-a", "-Dn"]
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, timeout=60, check=False
        )
        transcript = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
        assert result.returncode == 0, transcript
        sent = [line.partition(">>> ")[2] for line in transcript.splitlines() if ">>> " in line]
        assert sent, transcript
        self.commands.extend(sent)

    def messages(self, folder: str = "INBOX") -> dict[str, Path]:
        """The folder's messages keyed by their mbsync UID; new/ and cur/ together."""
        found = {}
        for path in [*(self.maildir / folder / "new").iterdir(), *(self.maildir / folder / "cur").iterdir()]:
            found[path.name.split(",U=")[1].split(":")[0]] = path
        return found


def as_maildir(message: bytes) -> bytes:
    """mbsync keeps Maildir files in the local line-ending convention, LF."""
    return message.replace(b"\r\n", b"\n")


def without_tuid(message: bytes) -> bytes:
    """mbsync adds an X-TUID header to every message it copies, to find it again if a run is cut short."""
    return re.sub(rb"(?m)^X-TUID: [^\r\n]*\r?\n", b"", message)


def maildir_flags(path: Path) -> str:
    return path.name.rpartition(":2,")[2]


def set_maildir_flags(path: Path, flags: str) -> Path:
    """Give a message new Maildir flags; as a mail reader would, move it into cur/."""
    target = path.parent.parent / "cur" / (path.name.rpartition(":2,")[0] + ":2," + flags)
    path.rename(target)
    return target


def server_flags(
    server: RunningServer, uids: list[int], folder: str = "INBOX"
) -> dict[int, tuple[bytes, ...]]:
    client = imapclient_session(server, "bob")
    client.select_folder(folder, readonly=True)
    flags = client.get_flags(uids)
    client.logout()
    return flags


@pytest.fixture
def mbsync(server: RunningServer, tmp_path: Path) -> Mbsync:
    return Mbsync(server, tmp_path / "mbsync")


@pytest.mark.parametrize("starttls", [False, True], ids=["imaps-login", "starttls-authenticate-plain"])
async def test_mbsync_brings_delivered_mail_down_byte_exact(
    server: RunningServer, tmp_path: Path, starttls: bool
) -> None:
    mbsync = Mbsync(server, tmp_path / "mbsync", starttls=starttls)
    await in_thread(deliver, server, multipart("first", "bob@example.org"), "bob@example.org")
    await mbsync.run()
    assert {p.name for p in mbsync.maildir.iterdir()} == {
        "INBOX",
        "Archive",
        "Drafts",
        "Junk",
        "Sent",
        "Trash",
    }
    # A second delivery between runs comes down incrementally.
    await in_thread(deliver, server, multipart("second", "bob@example.org"), "bob@example.org")
    await mbsync.run()
    stored = await server.stored_messages("bob")
    local = mbsync.messages()
    assert sorted(local) == ["1", "2"]
    for uid, message in zip(("1", "2"), stored, strict=True):
        assert without_tuid(local[uid].read_bytes()) == as_maildir(message)
    assert not [command for command in mbsync.commands if "SEARCH" in command]


async def test_mbsync_pushes_local_flag_changes_up(server: RunningServer, mbsync: Mbsync) -> None:
    for subject in ("seen", "flagged"):
        await in_thread(deliver, server, simple(subject, "bob@example.org"), "bob@example.org")
    await mbsync.run()
    local = mbsync.messages()
    set_maildir_flags(local["1"], "S")
    set_maildir_flags(local["2"], "FS")
    await mbsync.run()
    flags = await in_thread(server_flags, server, [1, 2])
    assert flags[1] == (b"\\Seen",)
    assert set(flags[2]) == {b"\\Flagged", b"\\Seen"}


async def test_mbsync_pushes_local_deletions_up(server: RunningServer, mbsync: Mbsync) -> None:
    for subject in ("trashed", "removed", "kept"):
        await in_thread(deliver, server, simple(subject, "bob@example.org"), "bob@example.org")
    await mbsync.run()
    local = mbsync.messages()
    set_maildir_flags(local["1"], "T")  # marked deleted, expunged by mbsync (Expunge Both)
    local["2"].unlink()  # gone from the Maildir altogether
    await mbsync.run()
    remaining = await server.stored_messages("bob")
    assert len(remaining) == 1 and remaining[0].endswith(simple("kept", "bob@example.org"))
    assert list(mbsync.messages()) == ["3"]


async def test_mbsync_pushes_a_local_new_message_up(server: RunningServer, mbsync: Mbsync) -> None:
    await mbsync.run()
    written = b"From: bob@example.org\r\nSubject: written offline\r\n\r\nSaved locally.\r\n"
    # Written the way a local mail reader writes Maildir files, with LF line ends; IMAP carries CRLF.
    (mbsync.maildir / "Drafts" / "cur" / "1700000000.1_1.laptop:2,DS").write_bytes(as_maildir(written))
    await mbsync.run()
    (uploaded,) = await server.stored_messages("bob", "Drafts")
    assert b"\r\nX-TUID: " in uploaded and without_tuid(uploaded) == written
    assert set((await in_thread(server_flags, server, [1], "Drafts"))[1]) == {b"\\Draft", b"\\Seen"}


async def test_mbsync_brings_server_flag_changes_and_deletions_down(
    server: RunningServer, mbsync: Mbsync
) -> None:
    for subject in ("flag me", "delete me"):
        await in_thread(deliver, server, simple(subject, "bob@example.org"), "bob@example.org")
    await mbsync.run()

    def change_on_server() -> None:
        client = imapclient_session(server, "bob")
        client.select_folder("INBOX")
        client.add_flags([1], [b"\\Flagged", b"\\Answered"])
        client.add_flags([2], [b"\\Deleted"])
        client.expunge()
        client.logout()

    await in_thread(change_on_server)
    await mbsync.run()
    local = mbsync.messages()
    assert list(local) == ["1"]
    assert maildir_flags(local["1"]) == "FR"


async def test_mbsync_creates_folders_on_both_sides(server: RunningServer, mbsync: Mbsync) -> None:
    await mbsync.run()
    for sub in ("cur", "new", "tmp"):
        (mbsync.maildir / "Local Projects" / sub).mkdir(parents=True)
    (mbsync.maildir / "Local Projects" / "cur" / "1700000000.2_1.laptop:2,S").write_bytes(simple("note"))

    def create_on_server() -> None:
        client = imapclient_session(server, "bob")
        client.create_folder("Receipts")
        client.append("Receipts", simple("receipt"), (b"\\Seen",))
        client.logout()

    await in_thread(create_on_server)
    await mbsync.run()
    assert (mbsync.maildir / "Receipts" / "cur").is_dir()
    (receipt,) = mbsync.messages("Receipts").values()
    assert without_tuid(receipt.read_bytes()) == as_maildir(simple("receipt"))
    (uploaded,) = await server.stored_messages("bob", "Local Projects")
    assert without_tuid(uploaded) == simple("note")
