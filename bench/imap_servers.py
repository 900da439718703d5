"""The two IMAP servers under test, each in its own process group on a free loopback port, stopped on exit.

Both listen with implicit TLS (RFC 8314) using the same self-signed certificate, and both check LOGIN against
the same argon2id hash, so each login costs them the same work. Entering a server starts it and waits for its
greeting; leaving stops it and everything it spawned.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from smtp_procfs import process_tree, tree_cpu_seconds, tree_rss_kib
from smtp_targets import Unavailable, free_port, stop_group, tail

START_TIMEOUT = 60.0
DOMAIN = "example.org"
PASSWORD = "password123"
KITTIWAKE = [sys.executable, "-m", "kittiwake"]
DOVECOT = "/usr/sbin/dovecot"
CONNECTION_LIMIT = 20000


def wait_for_greeting(port: int, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Until a TLS connection to the port gets an IMAP `* OK` greeting (RFC 9051 §7.1.1)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"exited with status {process.returncode}: {tail(log)}")
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                context.wrap_socket(raw) as tls,
            ):
                if tls.recv(512).startswith(b"* OK"):
                    tls.sendall(b"x LOGOUT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise Unavailable(f"no IMAP greeting on port {port} within {timeout:.0f}s: {tail(log)}")


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """A server process started by `start()` and stopped when the context is left."""

    name = ""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.log = folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
        wait_for_greeting(self.port, self.process, START_TIMEOUT, self.log)

    def pids(self) -> list[int]:
        return process_tree(self.process.pid) if self.process else []

    def rss_kib(self) -> int:
        return tree_rss_kib(self.process.pid) if self.process else 0

    def pss_kib(self) -> int:
        return sum(pss_kib(pid) for pid in self.pids())

    def cpu_seconds(self) -> float:
        """CPU used so far by the server's processes, those that have exited included."""
        return tree_cpu_seconds(self.process.pid) if self.process else 0.0

    def __enter__(self) -> Server:
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, timeout=20.0)
            self.process = None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


class KittiwakeServer(Server):
    name = "kittiwake"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.config = folder / "kittiwake.toml"
        run = subprocess.run(
            [*KITTIWAKE, "init", str(folder), "--domain", DOMAIN, "--dev-ports"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if run.returncode != 0:
            raise Unavailable(f"kittiwake init failed: {run.stderr.decode(errors='replace').strip()}")
        self._configure()

    def _configure(self) -> None:
        """Only the implicit-TLS IMAP listener, and limits high enough for the connection count under test."""
        text = self.config.read_text()
        for listener in ("smtp", "submission", "submissions", "imap"):
            text = re.sub(rf"(?m)^{listener} = .*$", f"{listener} = []", text)
        text = re.sub(r"(?m)^imaps = .*$", f'imaps = ["127.0.0.1:{self.port}"]', text)
        imap_table = text.index("[imap]")
        head, rest = text[:imap_table], text[imap_table:]
        rest = re.sub(r"(?m)^max_connections = .*$", f"max_connections = {CONNECTION_LIMIT}", rest, count=1)
        rest = re.sub(
            r"(?m)^max_connections_per_ip = .*$",
            f"max_connections_per_ip = {CONNECTION_LIMIT}",
            rest,
            count=1,
        )
        self.config.write_text(head + rest)

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def certificate(self) -> tuple[Path, Path]:
        return self.folder / "tls" / "cert.pem", self.folder / "tls" / "key.pem"

    def command(self) -> list[str]:
        return [*KITTIWAKE, "-c", str(self.config), "serve"]


class DovecotServer(Server):
    """A private Dovecot: its own config, base and state dirs, a passwd-file, Maildirs owned by `nobody`."""

    name = "dovecot"

    def __init__(
        self, folder: Path, certificate: tuple[Path, Path], users: dict[str, str], *, fsync: str = "optimized"
    ) -> None:
        if not os.path.exists(DOVECOT):
            raise Unavailable(f"{DOVECOT} is not installed")
        if os.geteuid() != 0:
            raise Unavailable("a private Dovecot with its own mail and login users needs root here")
        super().__init__(folder)
        self.fsync = fsync
        folder.chmod(0o755)
        self.mail = folder / "mail"
        self.mail.mkdir()
        for sub in ("run", "state"):
            (folder / sub).mkdir()
        passwd = folder / "users"
        passwd.write_text("".join(f"{user}:{{ARGON2ID}}{hashed}\n" for user, hashed in users.items()))
        passwd.chmod(0o644)
        self.config = folder / "dovecot.conf"
        self.config.write_text(self._config_text(certificate, passwd))

    def _config_text(self, certificate: tuple[Path, Path], passwd: Path) -> str:
        # One imap process per connection is Dovecot's default; logins go through long-lived imap-login
        # processes ("high-performance" mode), the setting Dovecot recommends for many connections.
        # argon2 checks run in auth-worker processes (through the auth cache), in parallel as kittiwake's
        # threads run them, instead of one at a time in the auth process. mail_fsync is Dovecot's default,
        # "optimized" (flag changes and expunges are not fsync'd before OK), unless the bench asks for
        # "always", the durability kittiwake gives every command.
        return f"""base_dir = {self.folder}/run
mail_fsync = {self.fsync}
state_dir = {self.folder}/state
log_path = {self.log}
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{certificate[0]}
ssl_key = <{certificate[1]}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{self.mail}/%u
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
default_process_limit = {CONNECTION_LIMIT}
default_client_limit = {CONNECTION_LIMIT}
auth_cache_size = 10M
auth_cache_verify_password_with_worker = yes
service auth {{
  vsz_limit = 2G
}}
service auth-worker {{
  vsz_limit = 2G
}}
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID {passwd}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={self.mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {self.port}
  }}
  service_count = 0
  process_min_avail = {os.cpu_count() or 1}
  vsz_limit = 2G
}}
service imap {{
  process_limit = {CONNECTION_LIMIT}
}}
protocol imap {{
  mail_max_userip_connections = {CONNECTION_LIMIT}
}}
"""

    def maildir(self, user: str) -> Path:
        return self.mail / user

    def hand_over(self) -> None:
        """Dovecot refuses to access mail as root: the Maildirs belong to the mail user."""
        for root, dirs, files in os.walk(self.mail):
            for name in dirs + files:
                os.chown(os.path.join(root, name), 65534, 65534, follow_symlinks=False)
        os.chown(self.mail, 65534, 65534)

    def command(self) -> list[str]:
        return [DOVECOT, "-c", str(self.config), "-F"]
