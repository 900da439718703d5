"""A private Postfix instance in a temp dir, as a peer MTA: it takes mail for one virtual domain into Maildir
and relays everything else to a fixed next hop. Needs root (the master drops to the postfix account)."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
SENDMAIL = "/usr/sbin/sendmail"
START_TIMEOUT = 30.0

# Every daemon unchrooted: a chroot would need copies of /etc files inside the private queue directory.
MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
local     unix  - n n -  - local
virtual   unix  - n n -  - virtual
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
multi_instance_directories =
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
# Postfix accepts only configured interface addresses here; master.cf binds the extra loopback address.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtp_host_lookup = native
disable_dns_lookups = yes
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_received_header = yes
relayhost = [{relay_host}]:{relay_port}
alias_maps =
alias_database =
biff = no
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/vmail
virtual_mailbox_maps = inline:{{{mailbox}@{domain}={mailbox}/}}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""


def require_postfix() -> None:
    """These tests exist to exercise a real Postfix: its absence is a failure of the test machine."""
    if not os.path.exists(POSTFIX) or not os.path.exists(SENDMAIL):
        raise AssertionError(
            f"{POSTFIX} is missing: install the Debian package postfix (scripts/test.sh does)"
        )
    if os.geteuid() != 0:
        raise AssertionError("a Postfix master must start as root to drop to the postfix account")


@dataclass(slots=True, kw_only=True)
class PostfixPeer:
    root: Path
    domain: str
    mailbox: str
    host: str
    port: int

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    def maildir_messages(self) -> list[bytes]:
        folder = self.root / "vmail" / self.mailbox / "new"
        if not folder.exists():
            return []
        return [path.read_bytes() for path in sorted(folder.iterdir())]

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else "(no maillog)"

    def sendmail(self, sender: str, recipient: str, message: bytes) -> None:
        """Inject through Postfix's own sendmail(1), as a local program would."""
        command = [SENDMAIL, "-C", str(self.etc), "-f", sender, "--", recipient]
        result = subprocess.run(command, input=message, capture_output=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr.decode(errors="replace")


def _configure(peer: PostfixPeer, relay: tuple[str, int], cert: Path, key: str | Path) -> None:
    owner = pwd.getpwnam("postfix")
    mailbox = pwd.getpwnam("nobody")
    for part in ("etc", "queue", "data", "vmail"):
        (peer.root / part).mkdir(parents=True)
    os.chown(peer.root / "data", owner.pw_uid, owner.pw_gid)
    os.chown(peer.root / "vmail", mailbox.pw_uid, mailbox.pw_gid)
    # The postfix and nobody accounts must reach their folders inside the temp dir.
    for folder in (*peer.root.parents[:3], peer.root):
        if str(folder).startswith("/tmp/"):
            folder.chmod(0o755)
    (peer.etc / "master.cf").write_text(MASTER_CF.format(host=peer.host, port=peer.port))
    main_cf = MAIN_CF.format(
        root=peer.root,
        domain=peer.domain,
        mailbox=peer.mailbox,
        relay_host=relay[0],
        relay_port=relay[1],
        cert=cert,
        key=key,
        uid=mailbox.pw_uid,
        gid=mailbox.pw_gid,
    )
    (peer.etc / "main.cf").write_text(main_cf)


def _wait_for_banner(peer: PostfixPeer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"postfix exited with {process.returncode}: {peer.log()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((peer.host, peer.port), 1) as sock:
            if sock.recv(100).startswith(b"220"):
                return
        time.sleep(0.1)
    raise AssertionError(f"postfix did not answer on {peer.host}:{peer.port}: {peer.log()[-2000:]}")


def _master_pid(peer: PostfixPeer) -> int | None:
    path = peer.root / "queue" / "pid" / "master.pid"
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split()[0])
    return None


@contextlib.contextmanager
def running_postfix(
    peer: PostfixPeer, *, relay: tuple[str, int], cert: Path, key: Path
) -> Iterator[PostfixPeer]:
    require_postfix()
    _configure(peer, relay, cert, key)
    command = [POSTFIX, "-c", str(peer.etc), "start-fg"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for_banner(peer, process)
        yield peer
    finally:
        master = _master_pid(peer)
        subprocess.run([POSTFIX, "-c", str(peer.etc), "stop"], capture_output=True, timeout=30, check=False)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # The master and its daemons run in a session of their own; make sure none outlives the test.
        if master is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(master, signal.SIGKILL)
