"""The verification helper process: it decides as the server's own process would, and when it dies or hangs
the server checks mail itself, so no message waits on it or goes unchecked."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kittiwake.config import InboundSettings
from kittiwake.delivery.verification import Disposition, Judgement, Verdicts, judge_content
from kittiwake.delivery.verify_process import VerifyProcesses
from kittiwake.resolver import DnspythonResolver
from tests.dns_server import dns_server
from tests.service.server_harness import running_server
from tests.service.smtpd.test_inbound_verification import ZONE, results_field, send_on_one_connection, signed

HOST = "mail.example.org"
SETTINGS = InboundSettings()


def verdicts(mail_from: str) -> Verdicts:
    return Verdicts(ip="127.0.0.1", mail_from=mail_from, helo="client.sender.test", iprev="pass")


def header_block(message: bytes) -> bytes:
    return message[: message.index(b"\r\n\r\n") + 4]


@pytest.fixture
async def dns() -> AsyncIterator[str]:
    async with dns_server(ZONE) as address:
        yield address


@pytest.fixture
async def helpers(dns: str) -> AsyncIterator[VerifyProcesses]:
    processes = VerifyProcesses(1, dns, HOST, SETTINGS, timeout=3, restart_interval=0)
    await processes.start()
    try:
        yield processes
    finally:
        await processes.close()


async def in_process(dns: str, mail_from: str, message: bytes) -> Judgement:
    resolver = DnspythonResolver(dns, timeout=5)
    return await judge_content(verdicts(mail_from), message, header_block(message), resolver, HOST, SETTINGS)


@pytest.mark.parametrize(
    ("mail_from", "message", "expected"),
    [
        ("boss@sender.test", signed("genuine"), Disposition.INBOX),
        # SPF fails for soft.test, but the DKIM signature of the author's domain passes DMARC.
        ("boss@soft.test", signed("sent through another service"), Disposition.INBOX),
        # Signed by sender.test for a soft.test author: nothing aligns, and soft.test asks for quarantine.
        ("boss@soft.test", signed("quarantined", from_domain="soft.test"), Disposition.JUNK),
    ],
)
async def test_helper_judges_every_message_as_the_server_process_does(
    helpers: VerifyProcesses, dns: str, mail_from: str, message: bytes, expected: Disposition
) -> None:
    judgement = await helpers.judge(verdicts(mail_from), message, header_block(message))
    assert judgement is not None
    assert judgement == await in_process(dns, mail_from, message)
    assert judgement.disposition is expected


async def test_dmarc_reject_is_decided_in_the_helper(helpers: VerifyProcesses) -> None:
    forged = signed("forged").replace(b"Subject: quarterly", b"Subject: changed")
    # Altered, so DKIM fails; sent from a domain whose SPF does not align with the author's.
    judgement = await helpers.judge(verdicts("boss@soft.test"), forged, header_block(forged))
    assert judgement is not None
    assert judgement.disposition is Disposition.REJECT
    assert judgement.author_domain == "sender.test"
    assert b"dkim=fail" in judgement.auth_results and b"dmarc=fail" in judgement.auth_results


async def test_a_killed_helper_answers_none_then_is_started_again(helpers: VerifyProcesses) -> None:
    message = signed("after a crash")
    (pid,) = helpers.pids()
    os.kill(pid, signal.SIGKILL)
    first = await helpers.judge(verdicts("boss@sender.test"), message, header_block(message))
    # The helper's death is noticed either before the request (it is started again at once) or while
    # waiting for the answer (None: the caller checks the message itself). Either way, then it answers.
    if first is None:
        first = await helpers.judge(verdicts("boss@sender.test"), message, header_block(message))
    assert first is not None and first.disposition is Disposition.INBOX
    assert helpers.pids() and helpers.pids() != [pid]


async def test_a_hung_helper_answers_none_within_the_time_limit_and_is_replaced(
    helpers: VerifyProcesses,
) -> None:
    message = signed("stuck")
    (pid,) = helpers.pids()
    os.kill(pid, signal.SIGSTOP)
    assert await helpers.judge(verdicts("boss@sender.test"), message, header_block(message)) is None
    judgement = await helpers.judge(verdicts("boss@sender.test"), message, header_block(message))
    assert judgement is not None and judgement.disposition is Disposition.INBOX
    assert helpers.pids() != [pid]


async def test_mail_arriving_while_the_helper_is_dead_is_checked_by_the_server(
    tmp_path: Path, dns: str
) -> None:
    async with running_server(tmp_path, dns_address=dns) as server:
        verifier = server.services.verifier
        assert verifier is not None
        for pid in verifier.pids():
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)  # the server notices the pipe close
        assert verifier.pids() == []
        await asyncio.to_thread(send_on_one_connection, server, "boss@sender.test", [signed("while down")])
        (stored,) = await server.stored_messages()
        field = results_field(stored)
        assert b"spf=pass" in field and b"dkim=pass" in field and b"dmarc=pass" in field
