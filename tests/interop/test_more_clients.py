"""offlineimap3 (two-way IMAPS synchronisation with a Maildir) and getmail6 (IMAPS retrieval into a Maildir,
keeping or deleting what it fetched) against a whole kittiwake with real TLS and the test CA. Both verify the
server certificate against the test CA and its DNS name, so they connect to "localhost", a name the test CA
issued the certificate for. A missing program fails its test, naming the Debian package to install."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from imapclient import IMAPClient  # type: ignore[import-untyped]

from tests.interop.test_clients import deliver, require
from tests.service.server_harness import PASSWORD, RunningServer, running_server

OFFLINEIMAP = "/usr/bin/offlineimap"
GETMAIL = "/usr/bin/getmail"
USER = "alice@example.org"


def message(subject: str) -> bytes:
    return (
        f"From: Sender <sender@elsewhere.net>\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@elsewhere.net>\r\n\r\n"
        f"Body of {subject}.\r\n.A line that starts with a dot.\r\n"
    ).encode()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "server") as running:
        yield running


async def run_program(command: list[str]) -> str:
    result = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=90, check=False)
    output = (result.stdout[-4000:] + result.stderr[-4000:]).decode(errors="replace")
    assert result.returncode == 0, f"{command[0]} exited with {result.returncode}:\n{output}"
    return output


def server_session(server: RunningServer) -> IMAPClient:
    client = IMAPClient(
        "127.0.0.1", port=server.ports["imaps"], ssl=True, ssl_context=server.client_tls, timeout=20
    )
    client.login(USER, PASSWORD)
    return client


def server_flags(server: RunningServer, uids: list[int]) -> dict[int, set[bytes]]:
    """UID -> flags of those messages in INBOX, read without changing anything."""
    client = server_session(server)
    try:
        client.select_folder("INBOX", readonly=True)
        return {uid: set(flags) for uid, flags in client.get_flags(uids).items()}
    finally:
        client.logout()


# offlineimap3: two-way synchronisation


@pytest.fixture
async def named_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningServer]:
    """The server with a certificate that also names "localhost" as its subject Common Name. offlineimap 8
    (imapserver.__verifycert) refuses a certificate without a Common Name even when a subjectAltName
    matches, and the test CA otherwise issues only subjectAltNames (as RFC 6125 §6.4.4 prefers); the chain
    is still verified against the test CA and the name against the certificate."""
    issue = trustme.CA.issue_cert

    def issue_named(ca: trustme.CA, *identities: str, **options: object) -> trustme.LeafCert:
        return issue(ca, *identities, common_name="localhost", **options)  # type: ignore[arg-type]

    monkeypatch.setattr(trustme.CA, "issue_cert", issue_named)
    async with running_server(tmp_path / "server") as running:
        yield running


class OfflineImap:
    """An offlineimap configuration synchronising alice's INBOX with a local Maildir, over IMAPS."""

    def __init__(self, server: RunningServer, folder: Path) -> None:
        self.maildir = folder / "mail"
        self.maildir.mkdir(parents=True)
        self.config = folder / "offlineimaprc"
        self.config.write_text(
            "[general]\n"
            "accounts = kittiwake\n"
            f"metadata = {folder / 'metadata'}\n"
            "\n"
            "[Account kittiwake]\n"
            "localrepository = local\n"
            "remoterepository = remote\n"
            "\n"
            "[Repository local]\n"
            "type = Maildir\n"
            f"localfolders = {self.maildir}\n"
            "\n"
            "[Repository remote]\n"
            "type = IMAP\n"
            "remotehost = localhost\n"
            f"remoteport = {server.ports['imaps']}\n"
            f"remoteuser = {USER}\n"
            f"remotepass = {PASSWORD}\n"
            "ssl = yes\n"
            f"sslcacertfile = {server.ca_file}\n"
            "folderfilter = lambda name: name == 'INBOX'\n"
        )

    async def run(self) -> None:
        """Synchronise once (-o), printing only errors (-u quiet)."""
        await run_program([OFFLINEIMAP, "-c", str(self.config), "-o", "-u", "quiet"])

    def messages(self) -> dict[int, Path]:
        """The INBOX Maildir's messages keyed by the server UID offlineimap wrote into each file name."""
        inbox = self.maildir / "INBOX"
        found = {}
        for path in [*(inbox / "new").iterdir(), *(inbox / "cur").iterdir()]:
            uid = re.search(r",U=(\d+)", path.name)
            assert uid is not None, path.name
            found[int(uid.group(1))] = path
        return found


def maildir_flags(path: Path) -> str:
    return path.name.rpartition(":2,")[2]


def set_maildir_flags(path: Path, flags: str) -> Path:
    """Give a message new Maildir flags the way a mail reader does: rename it into cur/."""
    target = path.parent.parent / "cur" / (path.name.rpartition(":2,")[0] + ":2," + flags)
    path.rename(target)
    return target


@pytest.fixture
def offlineimap(named_server: RunningServer, tmp_path: Path) -> OfflineImap:
    require(OFFLINEIMAP, "offlineimap3")
    return OfflineImap(named_server, tmp_path / "offlineimap")


async def test_offlineimap_brings_delivered_mail_down_byte_exact(
    named_server: RunningServer, offlineimap: OfflineImap
) -> None:
    await asyncio.to_thread(deliver, named_server, message("first"), USER)
    await offlineimap.run()
    # A second delivery between runs comes down incrementally.
    await asyncio.to_thread(deliver, named_server, message("second"), USER)
    await offlineimap.run()
    stored = await named_server.stored_messages("alice")
    local = offlineimap.messages()
    assert sorted(local) == [1, 2]
    # offlineimap keeps Maildir files in the local line-ending convention, LF.
    assert [local[1].read_bytes(), local[2].read_bytes()] == [m.replace(b"\r\n", b"\n") for m in stored]


async def test_offlineimap_pushes_local_flag_changes_up(
    named_server: RunningServer, offlineimap: OfflineImap
) -> None:
    for subject in ("seen", "flagged"):
        await asyncio.to_thread(deliver, named_server, message(subject), USER)
    await offlineimap.run()
    local = offlineimap.messages()
    set_maildir_flags(local[1], "S")
    set_maildir_flags(local[2], "FS")
    await offlineimap.run()
    flags = await asyncio.to_thread(server_flags, named_server, [1, 2])
    assert flags == {1: {b"\\Seen"}, 2: {b"\\Flagged", b"\\Seen"}}


async def test_offlineimap_pushes_local_deletions_up(
    named_server: RunningServer, offlineimap: OfflineImap
) -> None:
    for subject in ("removed", "kept"):
        await asyncio.to_thread(deliver, named_server, message(subject), USER)
    await offlineimap.run()
    offlineimap.messages()[1].unlink()
    await offlineimap.run()
    remaining = await named_server.stored_messages("alice")
    assert len(remaining) == 1 and b"Subject: kept\r\n" in remaining[0]
    assert list(offlineimap.messages()) == [2]


async def test_offlineimap_brings_server_flag_changes_and_deletions_down(
    named_server: RunningServer, offlineimap: OfflineImap
) -> None:
    for subject in ("flag me", "delete me"):
        await asyncio.to_thread(deliver, named_server, message(subject), USER)
    await offlineimap.run()

    def change_on_server() -> None:
        client = server_session(named_server)
        try:
            client.select_folder("INBOX")
            client.add_flags([1], [b"\\Flagged", b"\\Answered"])
            client.add_flags([2], [b"\\Deleted"])
            client.expunge()
        finally:
            client.logout()

    await asyncio.to_thread(change_on_server)
    await offlineimap.run()
    local = offlineimap.messages()
    assert list(local) == [1]
    assert maildir_flags(local[1]) == "FR"


# getmail6: retrieval into a Maildir


@dataclass(frozen=True, slots=True, kw_only=True)
class Maildir:
    """Where getmail delivers, and the local user it delivers as (None: the user running the test)."""

    path: Path
    user: str | None


@pytest.fixture
def getmail_maildir() -> Iterator[Maildir]:
    """getmail refuses to write a Maildir as root, so under root it delivers as "nobody", into a folder
    "nobody" owns outside pytest's temporary tree (which only root may enter)."""
    user = "nobody" if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="getmail-") as folder:
        path = Path(folder) / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True)
        if user is not None:
            Path(folder).chmod(0o755)
            account = pwd.getpwnam(user)
            for owned in (path, *path.iterdir()):
                os.chown(owned, account.pw_uid, account.pw_gid)
        yield Maildir(path=path, user=user)


def getmail_rc(server: RunningServer, folder: Path, maildir: Maildir, *, delete: bool) -> Path:
    """A getmail rc file reading INBOX over IMAPS, verifying the test CA, into the Maildir."""
    rcfile = folder / "getmailrc"
    rcfile.write_text(
        "[retriever]\n"
        "type = SimpleIMAPSSLRetriever\n"
        "server = localhost\n"
        f"port = {server.ports['imaps']}\n"
        f"username = {USER}\n"
        f"password = {PASSWORD}\n"
        f"ca_certs = {server.ca_file}\n"
        'mailboxes = ("INBOX",)\n'
        "record_mailbox = false\n"
        "\n"
        "[destination]\n"
        "type = Maildir\n"
        f"path = {maildir.path}/\n" + (f"user = {maildir.user}\n" if maildir.user else "") + "\n"
        "[options]\n"
        "read_all = true\n"
        "delivered_to = false\n"
        "received = false\n"
        f"delete = {'true' if delete else 'false'}\n"
        "verbose = 0\n"
    )
    return rcfile


def as_delivered(stored: bytes) -> bytes:
    """What getmail writes for a stored message. Its Delivered-To, Received and X-getmail-retrieved-from-
    mailbox fields are turned off in the rc file; it always writes a Return-Path field of its own in place of
    the message's (RFC 5321 §4.4), here the same one kittiwake stored, and the local line ends, LF."""
    assert stored.startswith(b"Return-Path: <sender@elsewhere.net>\r\n")
    return stored.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("delete", [False, True], ids=["keep", "delete"])
async def test_getmail_retrieves_over_imaps_into_a_maildir_byte_exact(
    server: RunningServer, tmp_path: Path, getmail_maildir: Maildir, delete: bool
) -> None:
    require(GETMAIL, "getmail6")
    sent = message("getmail")
    await asyncio.to_thread(deliver, server, sent, USER)
    (stored,) = await server.stored_messages("alice")
    rcfile = getmail_rc(server, tmp_path, getmail_maildir, delete=delete)
    await run_program([GETMAIL, "--rcfile", str(rcfile), "--getmaildir", str(tmp_path)])
    (written,) = (getmail_maildir.path / "new").iterdir()
    assert written.read_bytes() == as_delivered(stored)
    assert stored.endswith(sent)
    assert await server.stored_messages("alice") == ([] if delete else [stored])
