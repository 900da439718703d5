"""More real mail programs against a whole kittiwake with real TLS and the test CA: curl (SMTP with STARTTLS
and implicit TLS; IMAPS LIST, FETCH and a partial FETCH), msmtp and mutt (submission with STARTTLS and on
465), the asyncio IMAP client aioimaplib (LOGIN, SELECT, FETCH, IDLE) and fetchmail (IMAPS into an MDA).
What they send is checked in the store; what they read is checked against what the store holds. A missing
program fails its test, naming the Debian package to install (scripts/test.sh installs them all)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import smtplib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aioimaplib  # type: ignore[import-untyped]
import pytest

from tests.service.server_harness import PASSWORD, RunningServer, running_server

CURL = "/usr/bin/curl"
MSMTP = "/usr/bin/msmtp"

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: real clients\r\n"
    b"\r\n"
    b"First line.\r\n"
    b".A line that starts with a dot.\r\n"
    b"Last line.\r\n"
)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "server") as running:
        yield running


def require(program: str, package: str) -> None:
    """A missing client is a failure of the test machine, named so it can be installed."""
    assert shutil.which(program), f"{program} is missing: install the Debian package {package}"


async def run(command: list[str], stdin: bytes | None = None) -> bytes:
    result = await asyncio.to_thread(
        subprocess.run, command, input=stdin, capture_output=True, timeout=60, check=False
    )
    output = (result.stdout[-3000:] + result.stderr[-3000:]).decode(errors="replace")
    assert result.returncode == 0, f"{command[0]} exited with {result.returncode}:\n{output}"
    return result.stdout


def deliver(server: RunningServer, message: bytes, to: str = "alice@example.org") -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=20) as smtp:
        smtp.sendmail("sender@elsewhere.net", [to], message)


def curl_send(server: RunningServer, url: str, message: Path, *extra: str) -> list[str]:
    return [
        CURL,
        "--silent",
        "--show-error",
        "--cacert",
        str(server.ca_file),
        "--user",
        f"alice@example.org:{PASSWORD}",
        "--mail-from",
        "alice@example.org",
        "--mail-rcpt",
        "bob@example.org",
        "--upload-file",
        str(message),
        *extra,
        url,
    ]


@pytest.mark.parametrize(
    ("scheme", "listener", "extra"),
    [("smtp", "submission", ["--ssl-reqd"]), ("smtps", "submissions", [])],
    ids=["starttls", "implicit-tls"],
)
async def test_curl_sends_with_auth_over_tls_and_the_message_arrives_unchanged(
    server: RunningServer, tmp_path: Path, scheme: str, listener: str, extra: list[str]
) -> None:
    require(CURL, "curl")
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE)
    url = f"{scheme}://127.0.0.1:{server.ports[listener]}/laptop.example.net"
    await run(curl_send(server, url, message, *extra))
    (stored,) = await server.stored_messages("bob")
    assert stored.endswith(MESSAGE)
    assert b"with ESMTPSA" in stored[: len(stored) - len(MESSAGE)]


def curl_imap(server: RunningServer, path: str, *extra: str) -> list[str]:
    return [
        CURL,
        "--silent",
        "--show-error",
        "--cacert",
        str(server.ca_file),
        "--user",
        f"alice@example.org:{PASSWORD}",
        *extra,
        f"imaps://127.0.0.1:{server.ports['imaps']}/{path}",
    ]


async def test_curl_imaps_lists_mailboxes(server: RunningServer) -> None:
    require(CURL, "curl")
    listing = (await run(curl_imap(server, ""))).decode()
    names = {line.rsplit(" ", 1)[-1].strip('"') for line in listing.splitlines() if line.startswith("* LIST")}
    assert {"INBOX", "Sent", "Drafts", "Junk", "Trash"} <= names, listing


async def test_curl_imaps_fetches_a_whole_message_by_uid(server: RunningServer) -> None:
    require(CURL, "curl")
    await asyncio.to_thread(deliver, server, MESSAGE)
    (stored,) = await server.stored_messages("alice")
    fetched = await run(curl_imap(server, "INBOX;UID=1"))
    assert fetched == stored


async def test_curl_imaps_partial_fetch_returns_the_first_ten_octets_of_the_body(
    server: RunningServer,
) -> None:
    require(CURL, "curl")
    await asyncio.to_thread(deliver, server, MESSAGE)
    fetched = await run(curl_imap(server, "INBOX;UID=1/;SECTION=TEXT;PARTIAL=0.10"))
    assert fetched == b"First line"


def msmtp_account(server: RunningServer, listener: str, starttls: bool) -> str:
    """An msmtp configuration: it reads the password only from a file private to its owner."""
    settings = {
        "host": "127.0.0.1",
        "port": str(server.ports[listener]),
        "tls": "on",
        "tls_starttls": "on" if starttls else "off",
        "tls_trust_file": str(server.ca_file),
        "auth": "on",
        "user": "alice@example.org",
        "password": PASSWORD,
        "from": "alice@example.org",
        "domain": "laptop.example.net",
    }
    return "account default\n" + "".join(f"{key} {value}\n" for key, value in settings.items())


@pytest.mark.parametrize(
    ("listener", "starttls"), [("submission", True), ("submissions", False)], ids=["starttls", "implicit-tls"]
)
async def test_msmtp_submits_with_auth_over_tls_and_the_message_arrives_unchanged(
    server: RunningServer, tmp_path: Path, listener: str, starttls: bool
) -> None:
    require(MSMTP, "msmtp")
    config = tmp_path / "msmtprc"
    config.write_text(msmtp_account(server, listener, starttls))
    config.chmod(0o600)
    await run([MSMTP, f"--file={config}", "--", "bob@example.org"], stdin=MESSAGE)
    (stored,) = await server.stored_messages("bob")
    assert stored.endswith(MESSAGE)
    assert b"with ESMTPSA" in stored[: len(stored) - len(MESSAGE)]


async def aioimap_client(server: RunningServer) -> aioimaplib.IMAP4_SSL:
    client = aioimaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=server.client_tls)
    await client.wait_hello_from_server()
    response = await client.login("alice@example.org", PASSWORD)
    assert response.result == "OK", response
    return client


async def test_aioimaplib_logs_in_selects_and_fetches_a_message(server: RunningServer) -> None:
    await asyncio.to_thread(deliver, server, MESSAGE)
    (stored,) = await server.stored_messages("alice")
    client = await aioimap_client(server)
    try:
        selected = await client.select("INBOX")
        assert selected.result == "OK" and b"1 EXISTS" in selected.lines
        fetched = await client.uid("fetch", "1", "(BODY.PEEK[])")
        assert fetched.result == "OK", fetched
        literals = [line for line in fetched.lines if isinstance(line, bytearray)]
        assert bytes(literals[0]) == stored
    finally:
        await client.logout()


async def test_aioimaplib_idle_is_told_of_a_delivery(server: RunningServer) -> None:
    client = await aioimap_client(server)
    try:
        assert (await client.select("INBOX")).result == "OK"
        idle = await client.idle_start(timeout=20)
        assert client.has_pending_idle()  # idle_start returns once the "+ idling" continuation came
        await asyncio.to_thread(deliver, server, MESSAGE)
        pushed = await client.wait_server_push(timeout=20)
        client.idle_done()
        assert (await asyncio.wait_for(idle, 20)).result == "OK"
    finally:
        await client.logout()
    assert b"1 EXISTS" in pushed, pushed


FETCHMAIL = "/usr/bin/fetchmail"


def certificate_md5(server: RunningServer) -> str:
    """The server certificate's fingerprint in fetchmail's notation. fetchmail 6.4 refuses a certificate
    without a subject Common Name even when a subjectAltName matches, and the test CA issues only
    subjectAltNames (as RFC 6125 §6.4.4 prefers), so the certificate is pinned (its fingerprint must
    match) instead of name-checked."""
    pem = (server.config.base_dir / server.config.tls.cert).read_text()
    der = ssl.PEM_cert_to_DER_cert(pem)
    digest = hashlib.md5(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def fetchmail_setup(server: RunningServer, folder: Path) -> Path:
    """An rcfile that polls INBOX once over IMAPS, verifying the test CA, into an MDA that writes files."""
    out = folder / "delivered"
    out.mkdir()
    mda = folder / "mda.sh"
    mda.write_text(f'#!/bin/sh\nexec cat > "$(mktemp -p {out} message.XXXXXX)"\n')
    mda.chmod(0o755)
    rcfile = folder / "fetchmailrc"
    rcfile.write_text(
        "set no syslog\n"
        f"poll 127.0.0.1 service {server.ports['imaps']} protocol IMAP\n"
        f'  user "alice@example.org" there with password "{PASSWORD}" is "alice" here\n'
        f'  ssl no sslcertck sslfingerprint "{certificate_md5(server)}"\n'
        f'  keep mda "{mda}"\n'
    )
    rcfile.chmod(0o600)  # fetchmail refuses an rcfile others can read: it holds a password
    return rcfile


async def test_fetchmail_retrieves_over_imaps_into_an_mda_and_keeps_the_message(
    server: RunningServer, tmp_path: Path
) -> None:
    require(FETCHMAIL, "fetchmail")
    await asyncio.to_thread(deliver, server, MESSAGE)
    (stored,) = await server.stored_messages("alice")
    rcfile = fetchmail_setup(server, tmp_path)
    command = [FETCHMAIL, "--fetchmailrc", str(rcfile), "--idfile", str(tmp_path / "ids"), "--nodetach"]
    await run([*command, "--pidfile", str(tmp_path / "pid")])
    (written,) = sorted((tmp_path / "delivered").iterdir())
    # fetchmail hands the MDA Unix line ends; the body and every header line must be the stored ones.
    assert written.read_bytes().replace(b"\n", b"\r\n").endswith(MESSAGE)
    assert await server.stored_messages("alice") == [stored]  # "keep": nothing deleted


MUTT = "/usr/bin/mutt"


def muttrc(server: RunningServer, folder: Path, url: str) -> Path:
    """Mutt sending through kittiwake: TLS required and verified against the test CA, AUTH as alice."""
    path = folder / "muttrc"
    path.write_text(
        'set from = "alice@example.org"\n'
        'set realname = "Alice"\n'
        "set use_from = yes\n"
        'set hostname = "laptop.example.net"\n'
        f'set smtp_url = "{url}"\n'
        f'set smtp_pass = "{PASSWORD}"\n'
        "set ssl_starttls = yes\n"
        "set ssl_force_tls = yes\n"
        "set ssl_verify_host = yes\n"
        f'set ssl_ca_certificates_file = "{server.ca_file}"\n'
        f'set certificate_file = "{folder / "certificates"}"\n'
        'set record = ""\n'
    )
    return path


@pytest.mark.parametrize(
    ("scheme", "listener"),
    [("smtp", "submission"), ("smtps", "submissions")],
    ids=["starttls", "implicit-tls"],
)
async def test_mutt_batch_send_over_tls_with_auth_reaches_the_inbox(
    server: RunningServer, tmp_path: Path, scheme: str, listener: str
) -> None:
    require(MUTT, "mutt")
    url = f"{scheme}://alice@example.org@localhost:{server.ports[listener]}/"
    command = [
        MUTT,
        "-n",
        "-F",
        str(muttrc(server, tmp_path, url)),
        "-s",
        "from mutt",
        "--",
        "bob@example.org",
    ]
    # Without a terminal on stdin mutt sends the body it reads there and exits: its batch mode.
    environment = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "TERM": "dumb"}
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        input=b"Hello from mutt.\n",
        capture_output=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    (stored,) = await server.stored_messages("bob")
    assert b"with ESMTPSA" in stored and b"\r\nSubject: from mutt\r\n" in stored
    assert b"From: Alice <alice@example.org>\r\n" in stored
    assert stored.endswith(b"\r\n\r\nHello from mutt.\r\n")
