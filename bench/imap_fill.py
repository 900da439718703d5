"""The same messages for both servers: into kittiwake's store through its API, into Dovecot's Maildir as files.

Messages are generated from a seed, so both servers hold byte-identical mail: plain text and
multipart/alternative, a few hundred bytes to a few kilobytes, every third one already \\Seen.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kittiwake.mail.structure import parse_structure
from kittiwake.mail.structure_codec import dump_structure
from kittiwake.store.models import Flags, IncomingMessage, SystemFlag
from kittiwake.store.sqlite import SqliteStore

WORDS = (
    b"tern gull puffin kittiwake fulmar gannet shag cormorant skua petrel auk guillemot razorbill "
    b"harbour tide cliff ledge colony nest season storm wind swell headland lighthouse ferry chart"
).split()
BATCH = 2000
EPOCH = 1_700_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    data: bytes
    seen: bool
    internal_date: int


def _text(rng: random.Random, words: int) -> bytes:
    lines = []
    for start in range(0, words, 12):
        lines.append(b" ".join(rng.choice(WORDS) for _ in range(min(12, words - start))))
    return b"\r\n".join(lines) + b"\r\n"


def make_message(number: int, rng: random.Random, body_words: int) -> bytes:
    sender = b"sender%d@example.net" % (number % 97)
    subject = b" ".join(rng.choice(WORDS) for _ in range(5))
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(EPOCH + number * 60)).encode()
    head = (
        b"From: Sender %d <%s>\r\nTo: bench@example.org\r\nSubject: %s\r\nDate: %s\r\n"
        b"Message-ID: <%d.bench@example.net>\r\nMIME-Version: 1.0\r\n"
    ) % (number % 97, sender, subject, date, number)
    if number % 4:
        return head + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + _text(rng, body_words)
    text = _text(rng, body_words)
    html = b"<html><body><p>" + text + b"</p></body></html>\r\n"
    return head + (
        b'Content-Type: multipart/alternative; boundary="b%d"\r\n\r\n'
        b"--b%d\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s"
        b"--b%d\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n%s--b%d--\r\n"
    ) % (number, number, text, number, html, number)


def samples(count: int, seed: int, body_words: int) -> Iterator[Sample]:
    rng = random.Random(seed)
    for number in range(1, count + 1):
        words = rng.randint(body_words // 4, body_words * 2)
        data = make_message(number, rng, words)
        yield Sample(data=data, seen=number % 3 == 0, internal_date=EPOCH + number * 60)


async def fill_kittiwake(store: SqliteStore, address: str, messages: Iterator[Sample]) -> int:
    """Append in large batches, each one transaction, with the structure parsed as delivery would."""
    account = await store.get_account(address)
    if account is None:
        raise LookupError(f"{address} is not an account")
    inbox = await store.get_mailbox(account.id, "INBOX")
    count = 0
    batch: list[IncomingMessage] = []
    for sample in messages:
        flags = Flags(system=SystemFlag.SEEN) if sample.seen else Flags()
        batch.append(
            IncomingMessage(
                blob=await store.save_blob(sample.data),
                size=len(sample.data),
                internal_date=sample.internal_date,
                structure=dump_structure(parse_structure(sample.data)),
                flags=flags,
            )
        )
        if len(batch) >= BATCH:
            count += len(await store.append(inbox.id, batch))
            batch = []
    if batch:
        count += len(await store.append(inbox.id, batch))
    return count


def fill_maildir(folder: Path, messages: Iterator[Sample]) -> int:
    """Maildir files as Dovecot writes them: LF line ends, S= (file size) and W= (CRLF size) in the name."""
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    count = 0
    for count, sample in enumerate(messages, start=1):
        data = sample.data.replace(b"\r\n", b"\n")
        info = ":2,S" if sample.seen else ":2,"
        name = f"{sample.internal_date}.M{count}P{os.getpid()}.bench,S={len(data)},W={len(sample.data)}{info}"
        path = folder / "cur" / name
        path.write_bytes(data)
        os.utime(path, (sample.internal_date, sample.internal_date))
    return count
