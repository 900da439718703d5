"""Fixtures of the outbound service tests: a kittiwake on SQLite in tmp_path, fake DNS for remote.test whose
MX hosts are sinks on 127.0.0.2 and 127.0.0.3 (see sink.py), and a clock the tests move forward."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import FakeClock, FakeResolver
from tests.service.server_harness import RunningServer, free_port, running_server


@pytest.fixture
def sink_port() -> int:
    return free_port()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver(
        mx_records={"remote.test": [(10, "mx1.remote.test"), (20, "mx2.remote.test")]},
        a_records={
            "mx1.remote.test": ["127.0.0.2"],
            "mx2.remote.test": ["127.0.0.3"],
            "bare.test": ["127.0.0.4"],
        },
        missing={"nowhere.test"},
    )


@pytest.fixture
async def server(
    tmp_path: Path, sink_port: int, resolver: FakeResolver, clock: FakeClock
) -> AsyncIterator[RunningServer]:
    overrides = {"queue.remote_port": sink_port, "queue.connect_timeout": 2}
    async with running_server(tmp_path, overrides, resolver=resolver, clock=clock) as running:
        yield running
