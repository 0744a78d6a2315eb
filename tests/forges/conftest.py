"""Fixtures for the forge clients: a real local HTTP server, a session, a clock that does not wait."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from fakeforge import FakeClock, FakeForge


@pytest.fixture
def server() -> Iterator[FakeForge]:
    with FakeForge() as forge:
        yield forge
    assert forge.errors == [], "the fake forge itself failed"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # no proxy or .netrc from the developer's environment
        yield http


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
