"""Servers under test: each one runs in its own process group on a free loopback port and is stopped on exit.

A target is a context manager: entering starts the server and waits until it answers, leaving stops it and
everything it spawned. `settle()` waits for work a server does after its 250 (a queue being delivered), so one
measurement does not pay for the previous one.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import TracebackType
from typing import IO

BENCH = Path(__file__).resolve().parent
DOMAIN = "example.org"
RECIPIENT = f"bench@{DOMAIN}"
SIZE_LIMIT = 64 * 1024 * 1024
START_TIMEOUT = 30.0
SMTP_SINK = "/usr/sbin/smtp-sink"


class Unavailable(Exception):
    """The server cannot be run on this machine; the message says why."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_banner(port: int, timeout: float, alive: subprocess.Popen[bytes] | None = None) -> None:
    """Until a connection to the port gets a 220 greeting (RFC 5321 §4.3.1)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise Unavailable(f"exited with status {alive.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
                if probe.recv(512).startswith(b"220"):
                    probe.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise Unavailable(f"no SMTP greeting on port {port} within {timeout:.0f}s")


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process; after it exits or the timeout passes, SIGKILL whatever is left of its group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ProcessTarget:
    """A server that is one child process writing its log to a file."""

    name = ""
    # Whether the server is that one process, so that its own VmHWM tells its peak memory.
    single_process = True

    def __init__(self, workdir: Path, environment: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.environment = environment
        self.port = free_port()
        self.log_path = workdir / f"{self.name}.log"
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write whatever the server needs before it starts."""

    def settle(self, timeout: float = 60.0) -> None:
        """Nothing runs after the 250: the message is delivered when it is accepted."""

    def __enter__(self) -> ProcessTarget:
        self.prepare()
        self._log = open(self.log_path, "wb")
        # A session of its own, so a Ctrl-C at the terminal reaches only the bench, which then stops it.
        self._process = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
            env=self.environment,
        )
        try:
            wait_for_banner(self.port, START_TIMEOUT, self._process)
        except Unavailable as error:
            self.__exit__(None, None, None)
            raise Unavailable(f"{error}: {tail(self.log_path)}") from None
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is not None:
            stop_group(self._process)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


class KittiwakeTarget(ProcessTarget):
    name = "kittiwake"

    @property
    def config_path(self) -> Path:
        return self.workdir / "kittiwake" / "kittiwake.toml"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "kittiwake", "-c", str(self.config_path), "serve"]

    def prepare(self) -> None:
        home = self.workdir / "kittiwake"
        self._cli("init", str(home), "--domain", DOMAIN, "--dev-ports")
        self.config_path.write_text(self.configure(self.config_path.read_text()))
        listen = tomllib.loads(self.config_path.read_text())["listen"]
        if listen["smtp"] != [f"127.0.0.1:{self.port}"]:
            raise Unavailable(f"could not set the smtp listener in {self.config_path}")
        self._cli("user", "add", RECIPIENT, "--password-stdin", stdin=b"password123\n")

    def configure(self, text: str) -> str:
        """Only the MX listener, on the bench's port; limits wide enough for 50 sessions and a 50 MB message."""
        replacements = {
            "smtp": f'["127.0.0.1:{self.port}"]',
            "submission": "[]",
            "submissions": "[]",
            "imap": "[]",
            "imaps": "[]",
            "max_connections_per_ip": "1000",
            "max_message_size": str(SIZE_LIMIT),
            # Acceptance is measured alone: the DNS-based checks of port 25 have their own benchmark
            # (bench/inbound_checks.py), and one client address sending thousands of messages a minute
            # would trip the per-address rate limits.
            "verify": "false",
            "max_messages_per_minute": "0",
            "max_connections_per_minute": "0",
        }
        for key, value in replacements.items():
            text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        return text

    def _cli(self, *arguments: str, stdin: bytes | None = None) -> None:
        command = [sys.executable, "-m", "kittiwake"]
        if arguments[0] != "init":
            command += ["-c", str(self.config_path)]
        done = subprocess.run(
            [*command, *arguments], input=stdin, capture_output=True, check=False, env=self.environment
        )
        if done.returncode != 0:
            raise Unavailable(f"kittiwake {arguments[0]} failed: {done.stderr.decode(errors='replace')}")


class AiosmtpdTarget(ProcessTarget):
    name = "aiosmtpd"

    def command(self) -> list[str]:
        spool = self.workdir / "aiosmtpd-spool"
        return [
            sys.executable,
            str(BENCH / "smtp_aiosmtpd.py"),
            "--port",
            str(self.port),
            "--spool",
            str(spool),
            "--size-limit",
            str(SIZE_LIMIT),
        ]

    def prepare(self) -> None:
        (self.workdir / "aiosmtpd-spool").mkdir()
        if not ensure_aiosmtpd():
            raise Unavailable("aiosmtpd is not installed and `pip install aiosmtpd` failed")


class SinkTarget(ProcessTarget):
    """Postfix's smtp-sink: answers everything and stores nothing, so its rate is the load generator's ceiling."""

    name = "sink"

    def command(self) -> list[str]:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        return [SMTP_SINK, *user, f"127.0.0.1:{self.port}", "1000"]

    def prepare(self) -> None:
        if not os.path.exists(SMTP_SINK):
            raise Unavailable(f"{SMTP_SINK} is not installed")


def ensure_aiosmtpd() -> bool:
    probe = [sys.executable, "-c", "import aiosmtpd"]
    if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return True
    install = [sys.executable, "-m", "pip", "install", "--quiet", "aiosmtpd"]
    subprocess.run(install, capture_output=True, check=False)
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0
