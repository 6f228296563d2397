"""Fixtures for the Docker adapter's tests: images from tests/images.py, containers named wpdk-…"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import images

PREFIX = "wpdk"
API_KEY = "0123456789abcdef0123456789abcdef"  # a well-formed fake: 32 hex characters

_seq = itertools.count()


@pytest.fixture(scope="session")
def client() -> Any:
    """The docker SDK client (the session's)."""
    return images.docker_client()


_OWNER = re.compile(rf"^{PREFIX}-.+-(\d+)-\d+(\..*)?$")


def _sweep(*, mine: bool) -> None:
    """Remove wpdk-… containers left by dead test processes (and, with ``mine``, this one's).

    Names carry the creating process's pid (:func:`unique`), so a session running at the same
    time on this daemon is never touched.
    """
    client = images.docker_client()
    for c in client.containers.list(all=True, filters={"name": PREFIX + "-"}):
        m = _OWNER.match(c.name)
        if m is None:
            continue
        pid = int(m.group(1))
        if (mine and pid == os.getpid()) or (pid != os.getpid() and not _alive(pid)):
            with contextlib.suppress(Exception):
                c.remove(force=True, v=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session", autouse=True)
def _leftovers() -> Iterator[None]:
    """Remove wpdk-… containers earlier runs left behind, and this session's containers and
    images at the end (images are cached for the session only)."""
    with contextlib.suppress(Exception):
        _sweep(mine=False)
    yield
    with contextlib.suppress(Exception):
        _sweep(mine=True)
    if not os.environ.get("WPDK_KEEP_IMAGES"):
        images.remove_images(PREFIX)


@pytest.fixture(scope="session")
def busybox(client: Any) -> str:
    """The plain busybox image's tag."""
    return images.busybox_image(tag_prefix=PREFIX)


@pytest.fixture(scope="session")
def agent_image(client: Any) -> str:
    """An image running the simulated agent 7.50."""
    return images.build_agent_image("7.50.3", tag_prefix=PREFIX)


def unique(name: str) -> str:
    """A container name unique to this test run: ``wpdk-<name>-<pid>-<n>``."""
    return f"{PREFIX}-{name}-{os.getpid()}-{next(_seq)}"


@pytest.fixture
def make_container() -> Iterator[Callable[..., str]]:
    """Start containers: ``make_container(image, "name", env=..., **create)``; all removed."""
    stack = contextlib.ExitStack()

    def make(image: str, name: str, **kwargs: Any) -> str:
        return stack.enter_context(images.container(image, unique(name), **kwargs))

    with stack:
        yield make
