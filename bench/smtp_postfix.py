"""A private Postfix instance: its own configuration, queue and data directories under the bench's temp dir.

The domain is a virtual mailbox domain delivered to Maildir under the temp dir, owned by `nobody`, so no
Unix account is needed. smtpd answers 250 only after cleanup has fsync'd the queue file (Postfix does so by
design). `in_flow_delay = 0s` turns off Postfix's deliberate slowing of clients when the queue grows, so what
is measured is how fast it can accept, as for the other servers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from smtp_procfs import process_tree
from smtp_targets import DOMAIN, RECIPIENT, SIZE_LIMIT, START_TIMEOUT, ProcessTarget, Unavailable, tail

POSTFIX = "/usr/sbin/postfix"
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

# Every daemon unchrooted: a chroot would need copies of /etc files inside the private queue directory.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
proxymap  unix  - - n -  - proxymap
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
myhostname = postfix.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
alias_maps =
alias_database =
biff = no
in_flow_delay = 0s
message_size_limit = {size_limit}
virtual_mailbox_limit = 0
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/vmail
virtual_mailbox_maps = inline:{{{recipient}=bench/}}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""


class PostfixTarget(ProcessTarget):
    """`postfix start-fg` keeps a shell in the foreground; the master daemon is its child in its own session."""

    name = "postfix"
    single_process = False

    @property
    def root(self) -> Path:
        return self.workdir / "postfix"

    @property
    def pid(self) -> int:
        return int((self.root / "queue" / "pid" / "master.pid").read_text().split()[0])

    def command(self) -> list[str]:
        return [POSTFIX, "-c", str(self.root / "etc"), "start-fg"]

    def prepare(self) -> None:
        if not os.path.exists(POSTFIX) or shutil.which("postconf") is None:
            raise Unavailable(f"{POSTFIX} is not installed")
        if os.geteuid() != 0:
            raise Unavailable("a Postfix master must start as root to drop to the postfix account")
        try:
            owner = pwd.getpwnam("postfix")
            mailbox = pwd.getpwnam("nobody")
        except KeyError as missing:
            raise Unavailable(f"no {missing} account") from None
        for part in ("etc", "queue", "data", "vmail"):
            (self.root / part).mkdir(parents=True)
        os.chown(self.root / "data", owner.pw_uid, owner.pw_gid)
        os.chown(self.root / "vmail", mailbox.pw_uid, mailbox.pw_gid)
        # The postfix and nobody accounts must be able to reach their folders inside the temp dir.
        for folder in (self.workdir, self.root):
            folder.chmod(0o755)
        (self.root / "etc" / "master.cf").write_text(MASTER_CF.format(port=self.port))
        settings = {"root": self.root, "size_limit": SIZE_LIMIT, "domain": DOMAIN, "recipient": RECIPIENT}
        main_cf = MAIN_CF.format(**settings, uid=mailbox.pw_uid, gid=mailbox.pw_gid)
        (self.root / "etc" / "main.cf").write_text(main_cf)

    def __enter__(self) -> PostfixTarget:
        try:
            super().__enter__()
        except Unavailable as error:
            raise Unavailable(f"{error} {tail(self.root / 'maillog')}") from None
        return self

    def settle(self, timeout: float = 120.0) -> None:
        """Until the queue is empty: delivery to Maildir runs after the 250 and would compete for the CPU."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._queued():
            time.sleep(0.2)

    def _queued(self) -> bool:
        return any(files for queue in QUEUES for _, _, files in os.walk(self.root / "queue" / queue))

    def __exit__(self, *exception: object) -> None:
        if self._process is None:
            return
        try:
            daemons = process_tree(self.pid)
        except (OSError, ValueError):
            daemons = []
        stop = [POSTFIX, "-c", str(self.root / "etc"), "stop"]
        subprocess.run(stop, capture_output=True, timeout=30, check=False)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(START_TIMEOUT)
        # The master runs in a session of its own, out of reach of the process-group kill below.
        for pid in daemons:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        super().__exit__(None, None, None)
