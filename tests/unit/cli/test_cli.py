"""The `kittiwake` command as a person runs it: a real process, its output and its exit status."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def kittiwake(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kittiwake", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("site") / "mail"
    result = kittiwake("init", str(directory), "--domain", "Example.ORG", "--dev-ports")
    assert result.returncode == 0, result.stderr
    return directory / "kittiwake.toml"


def test_init_creates_config_certificate_dkim_key_and_store(installed: Path) -> None:
    folder = installed.parent
    assert (folder / "tls" / "cert.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert (folder / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    assert (folder / "dkim" / "example.org.kittiwake.key").exists()
    assert (folder / "data" / "kittiwake.db").exists()
    assert kittiwake("-c", str(installed), "domain", "list").stdout.split() == ["example.org"]


def test_init_refuses_to_overwrite(installed: Path) -> None:
    result = kittiwake("init", str(installed.parent), "--domain", "example.org")
    assert result.returncode == 1
    assert "already exists" in result.stderr and "Traceback" not in result.stderr


def test_users_aliases_and_listing(installed: Path) -> None:
    config = str(installed)
    assert (
        kittiwake(
            "-c", config, "user", "add", "Carol@Example.org", "--password-stdin", stdin="s3cret-pass\n"
        ).returncode
        == 0
    )
    assert "carol@example.org" in kittiwake("-c", config, "user", "list").stdout
    again = kittiwake(
        "-c", config, "user", "add", "carol@example.org", "--password-stdin", stdin="s3cret-pass\n"
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    assert kittiwake("-c", config, "alias", "add", "sales@example.org", "carol@example.org").returncode == 0
    assert kittiwake("-c", config, "alias", "add", "@example.org", "carol@example.org").returncode == 0
    listing = kittiwake("-c", config, "alias", "list").stdout
    assert (
        "sales@example.org -> carol@example.org" in listing and "@example.org -> carol@example.org" in listing
    )
    assert kittiwake("-c", config, "alias", "remove", "sales@example.org").returncode == 0
    passwd = kittiwake(
        "-c", config, "user", "passwd", "carol@example.org", "--password-stdin", stdin="n3w-passw0rd\n"
    )
    assert passwd.returncode == 0
    assert kittiwake("-c", config, "user", "remove", "carol@example.org").returncode == 0
    assert "carol@example.org" not in kittiwake("-c", config, "user", "list").stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("user", "add", "nobody@elsewhere.org", "--password-stdin"), "not one of our domains"),
        (("user", "add", "not-an-address", "--password-stdin"), "not an address"),
        (("user", "add", "short@example.org", "--password-stdin"), "at least 8"),
        (("user", "remove", "ghost@example.org"), "no such user"),
        (("domain", "add", "not a domain"), "not a valid domain"),
        (("alias", "remove", "ghost@example.org"), "no such alias"),
    ],
)
def test_refusals_are_one_clear_line_and_status_1(installed: Path, args: tuple[str, ...], words: str) -> None:
    password = "short" if "short@example.org" in args else "long-enough-password"
    result = kittiwake("-c", str(installed), *args, stdin=password + "\n")
    assert result.returncode == 1
    assert words in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "kittiwake.toml"
    config.write_text("[smtp]\nmax_size = 5\n")
    result = kittiwake("-c", str(config), "check")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"kittiwake: {config}: smtp.max_size: unknown setting; known: command_timeout, data_timeout,"
        " max_bad_commands, max_connections, max_connections_per_ip, max_line_length, max_message_size,"
        " max_recipients"
    )


def test_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    result = kittiwake("-c", str(tmp_path / "none.toml"), "user", "list")
    assert result.returncode == 2 and "kittiwake init" in result.stderr


def test_dns_prints_mx_spf_dmarc_and_dkim(installed: Path) -> None:
    output = kittiwake("-c", str(installed), "dns").stdout
    assert "example.org.\t3600\tIN\tMX\t10 mail.example.org." in output
    assert '"v=spf1 mx -all"' in output
    assert "_dmarc.example.org." in output
    assert 'kittiwake._domainkey.example.org.\t3600\tIN\tTXT\t"v=DKIM1; k=rsa; p=' in output


def test_check_is_clean_on_a_fresh_install(installed: Path) -> None:
    result = kittiwake("-c", str(installed), "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_reports_a_broken_certificate(tmp_path: Path) -> None:
    assert kittiwake("init", str(tmp_path / "s"), "--domain", "example.net").returncode == 0
    (tmp_path / "s" / "tls" / "cert.pem").write_text("garbage")
    result = kittiwake("-c", str(tmp_path / "s" / "kittiwake.toml"), "check")
    assert result.returncode == 1 and "TLS: cannot load" in result.stdout


def test_help_everywhere() -> None:
    for args in ((), ("user",), ("alias",), ("domain",), ("init",), ("serve",), ("dns",), ("check",)):
        result = kittiwake(*args, "--help")
        assert result.returncode == 0 and "usage: kittiwake" in result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_logs_listeners_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    assert kittiwake("init", str(tmp_path / "s"), "--domain", "example.net", "--dev-ports").returncode == 0
    config = tmp_path / "s" / "kittiwake.toml"
    text = config.read_text()
    for name, port in (
        ("smtp", 2525),
        ("submission", 5587),
        ("submissions", 5465),
        ("imap", 1143),
        ("imaps", 1993),
    ):
        text = text.replace(f'{name} = ["127.0.0.1:{port}"]', f'{name} = ["127.0.0.1:{free_port()}"]')
    config.write_text(text)
    process = subprocess.Popen(
        [sys.executable, "-m", "kittiwake", "-c", str(config), "serve"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if " ready " in line or not line:
            break
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 0, "".join(lines) + rest
    assert "stopped" in rest
    assert "Traceback" not in "".join(lines) + rest


def test_console_script_and_python_dash_m_agree() -> None:
    script = Path(sys.executable).with_name("kittiwake")
    from_script = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert from_script.returncode == 0 and from_script.stdout.startswith("kittiwake ")
    assert from_script.stdout == kittiwake("--version").stdout


def test_queue_list_show_retry_flush_and_delete(installed: Path) -> None:
    import asyncio

    from kittiwake.store.interface import QueuedRecipient, QueueRequest
    from kittiwake.store.sqlite import SqliteStore

    async def enqueue() -> None:
        store = await SqliteStore.open(installed.parent / "data", recover=False)
        request = QueueRequest(
            queue_id="Q1TEST",
            sender="carol@example.org",
            recipients=(
                QueuedRecipient(address="x@elsewhere.net"),
                QueuedRecipient(address="y@elsewhere.net"),
            ),
        )
        await store.enqueue(request, await store.save_blob(b"Subject: q\r\n\r\nbody\r\n"), 19)
        await store.close()

    asyncio.run(enqueue())
    config = str(installed)
    listing = kittiwake("-c", config, "queue", "list").stdout
    assert "Q1TEST" in listing and "<carol@example.org>" in listing and "2/2 waiting" in listing
    shown = kittiwake("-c", config, "queue", "show", "Q1TEST").stdout
    assert "<x@elsewhere.net>  pending  attempts 0" in shown and "<y@elsewhere.net>" in shown
    assert "2 recipient(s)" in kittiwake("-c", config, "queue", "retry", "Q1TEST").stdout
    assert "2 recipient(s)" in kittiwake("-c", config, "queue", "flush").stdout
    assert kittiwake("-c", config, "queue", "delete", "Q1TEST").returncode == 0
    assert "the queue is empty" in kittiwake("-c", config, "queue", "list").stdout
    missing = kittiwake("-c", config, "queue", "show", "Q1TEST")
    assert missing.returncode == 1 and "no queued message" in missing.stderr


def test_sighup_reloads_the_certificate_without_dropping_a_session(tmp_path: Path) -> None:
    import socket as socket_module
    import ssl

    from kittiwake.admin.keys import make_self_signed_certificate

    assert kittiwake("init", str(tmp_path / "s"), "--domain", "example.net", "--dev-ports").returncode == 0
    config = tmp_path / "s" / "kittiwake.toml"
    port = free_port()
    text = config.read_text()
    for name, default in (("smtp", 2525), ("submission", 5587), ("imap", 1143), ("imaps", 1993)):
        text = text.replace(f'{name} = ["127.0.0.1:{default}"]', f"{name} = []")
    config.write_text(text.replace('submissions = ["127.0.0.1:5465"]', f'submissions = ["127.0.0.1:{port}"]'))
    process = subprocess.Popen(
        [sys.executable, "-m", "kittiwake", "-c", str(config), "serve"], stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        while b" ready " not in process.stderr.readline():
            pass
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

        def certificate_and_session() -> tuple[bytes, ssl.SSLSocket]:
            raw = socket_module.create_connection(("127.0.0.1", port), timeout=10)
            tls = context.wrap_socket(raw)
            assert tls.recv(100).startswith(b"220 ")
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return der, tls

        before, open_session = certificate_and_session()
        cert, key = tmp_path / "s" / "tls" / "cert.pem", tmp_path / "s" / "tls" / "key.pem"
        cert.unlink()
        key.unlink()
        make_self_signed_certificate("renewed.example.net", cert, key)
        process.send_signal(signal.SIGHUP)
        for _ in range(100):
            after, session = certificate_and_session()
            session.close()
            if after != before:
                break
            time.sleep(0.05)
        assert after != before  # new handshakes get the new certificate
        open_session.sendall(b"NOOP\r\n")
        assert open_session.recv(100).startswith(b"250 ")  # the session from before lives on
        open_session.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0
