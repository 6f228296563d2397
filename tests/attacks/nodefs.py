"""A node's file layout shared by root and an unprivileged attacker, for the file attacks.

The attacker is ``nobody`` (it stands for ``dd-agent`` or whoever took it over): it owns the
agent's config directory and a shared drop directory, and plants links and files there with
``setpriv``. Root's own files (``victim/``, ``profile.d/``) are what must never change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

NOBODY = 65534
SP_ON = "# system-probe\nruntime_security_config:\n  enabled: true\n"
SA_ON = "runtime_security_config:\n  enabled: true\ncompliance_config:\n  enabled: false\n"
SHADOW = b"root:$6$attack-test$not-a-real-hash-but-secret:19000:0:99999:7:::\n"


def as_attacker(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as nobody:nogroup with no supplementary groups (fails the test if it fails)."""
    proc = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, f"attacker step {argv} failed: {proc.stderr}"
    return proc


@attrs.define
class Node:
    """The layout: ``conf`` (owned by the attacker, files by root), ``victim/shadow`` and
    ``profile.d`` (root only), ``drop`` (a directory the attacker owns)."""

    root: Path
    conf: Path
    victim: Path
    profile: Path
    drop: Path

    @property
    def shadow(self) -> Path:
        """A root-only secret file."""
        return self.victim / "shadow"


@pytest.fixture
def node() -> Iterator[Node]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as an unprivileged attacker")
    base = Path(tempfile.mkdtemp(prefix="wpp-attack-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)  # noqa: S103 - the attacker must reach the layout
        conf, victim, profile, drop = (base / n for n in ("conf", "victim", "profile.d", "drop"))
        for d in (conf, victim, profile, drop):
            d.mkdir(mode=0o755)
        (conf / "system-probe.yaml").write_text(SP_ON)
        (conf / "security-agent.yaml").write_text(SA_ON)
        os.chown(conf, NOBODY, NOBODY)  # what `chown -R dd-agent:dd-agent` leaves behind
        os.chown(drop, NOBODY, NOBODY)
        victim.joinpath("shadow").write_bytes(SHADOW)
        os.chmod(victim / "shadow", 0o600)
        profile.joinpath("README").write_text("root's shell profile snippets\n")
        yield Node(base, conf, victim, profile, drop)
    finally:
        shutil.rmtree(base, ignore_errors=True)
