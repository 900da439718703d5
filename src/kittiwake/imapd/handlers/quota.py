"""QUOTA (RFC 9208): one quota root per account, the empty name, with STORAGE and MESSAGE resources."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.mailbox_names import normalize_inbox

ROOT = ""


async def _quota(session: ImapSession) -> r.QuotaResponse | None:
    account = await session.store.get_account_by_id(session.account_id())
    if account is None or (account.quota_bytes is None and account.quota_messages is None):
        return None
    used_bytes, used_messages = await session.store.account_usage(account.id)
    resources: list[tuple[str, int, int]] = []
    if account.quota_bytes is not None:
        # RFC 9208 §5.1: STORAGE is counted in units of 1024 octets.
        resources.append(("STORAGE", (used_bytes + 1023) // 1024, account.quota_bytes // 1024))
    if account.quota_messages is not None:
        resources.append(("MESSAGE", used_messages, account.quota_messages))
    return r.QuotaResponse(root=ROOT, resources=tuple(resources))


@handles(c.GetQuotaRoot)
async def get_quota_root(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.GetQuotaRoot)
    name = normalize_inbox(command.mailbox)
    await session.store.get_mailbox(session.account_id(), name)
    quota = await _quota(session)
    yield r.QuotaRootResponse(mailbox=name, roots=(ROOT,) if quota else (), utf8=session.utf8)
    if quota is not None:
        yield quota
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="GETQUOTAROOT completed")


@handles(c.GetQuota)
async def get_quota(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.GetQuota)
    quota = await _quota(session) if command.root == ROOT else None
    if quota is None:
        raise CommandFailed("No such quota root", r.NONEXISTENT)
    yield quota
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="GETQUOTA completed")


@handles(c.SetQuota)
async def set_quota(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    # RFC 9208 §4.1.3: users may not change their own quota; the administrator does (kittiwake user quota).
    raise CommandFailed("Quotas are set by the administrator", r.NOPERM)
    yield  # pragma: no cover - makes this an async generator
