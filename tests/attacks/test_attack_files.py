"""Attacks on the files wpprotect reads and writes as root in directories others can write to.

The attacker (``nobody``, standing for the agent's account) owns the agent's config directory and
a drop directory; it plants symlinks, swaps files after ``apply()`` and pre-creates the files a
copy is about to be written to. Each test performs the attack, asserts the typed error or the safe
outcome, and hashes root's files to show nothing outside the target changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.attacks.conftest import ROOT, tree_digest
from tests.attacks.nodefs import NOBODY, SA_ON, SHADOW, SP_ON, Node, as_attacker, node
from wpprotect.config import plan_classifier_priority, plan_disable
from wpprotect.errors import (
    ConfigFileError,
    PlanApplyError,
    PlanUndoError,
    UnsafePathError,
    WPProtectError,
)
from wpprotect.plan import Plan
from wpprotect.platforms.host import HostPlatform

__all__ = ["node"]  # the fixture, re-exported for pytest

SECRET = "not-a-real-hash-but-secret"


def _root_files(n: Node) -> dict[str, dict[str, str]]:
    return {"victim": tree_digest(n.victim), "profile.d": tree_digest(n.profile)}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wpprotect", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


# --- 1. a symlinked config file --------------------------------------------------------------


def test_symlink_to_shadow_is_neither_shown_nor_written(node: Node) -> None:
    before = _root_files(node)
    sp = node.conf / "system-probe.yaml"
    as_attacker("rm", "-f", str(sp))
    as_attacker("ln", "-s", str(node.shadow), str(sp))

    for args in ([], ["--json"]):
        proc = _cli(
            "disable", "--platform", "host", "--config-dir", str(node.conf),
            "--scope", "workload-protection", "--dry-run", *args,
        )  # fmt: skip
        assert proc.returncode != 0
        assert SECRET not in proc.stdout + proc.stderr
        assert "refusing to follow the symlink" in proc.stdout + proc.stderr
        if args:
            assert json.loads(proc.stdout)["error"]["type"] == "UnsafePathError"

    with pytest.raises(UnsafePathError, match="writable by its owner") as err:
        plan_disable(node.conf)
    assert err.value.path == sp
    assert SECRET not in str(err.value)
    with pytest.raises(UnsafePathError):
        plan_disable(sp)
    with pytest.raises(UnsafePathError):
        plan_classifier_priority(node.conf, 5)
    assert _root_files(node) == before
    assert os.readlink(sp) == str(node.shadow)


def test_links_are_followed_only_inside_a_root_only_directory(node: Node) -> None:
    os.chown(node.conf, 0, 0)  # a layout only root can write to
    sp = node.conf / "system-probe.yaml"
    real = node.conf / "system-probe.yaml.d-real"
    sp.rename(real)
    sp.symlink_to(real.name)  # a plain name in the same directory: followed
    plan = plan_disable(node.conf)
    assert plan.changes[0].target == str(real)
    plan.apply()
    assert sp.is_symlink()
    assert "enabled: false" in real.read_text()
    plan.undo()
    assert real.read_text() == SP_ON

    sp.unlink()
    sp.symlink_to(node.shadow)  # leaves the directory: refused, even here
    before = _root_files(node)
    with pytest.raises(UnsafePathError, match="leaves the directory"):
        plan_disable(node.conf)
    assert _root_files(node) == before

    elsewhere = node.profile / "system-probe.yaml"
    elsewhere.write_text(SP_ON)
    sp.unlink()
    sp.symlink_to(elsewhere)
    plan = plan_disable(node.conf, follow_symlinks=True)  # the caller opts in
    assert plan.changes[0].target == str(elsewhere)
    plan.apply()
    assert "enabled: false" in elsewhere.read_text()
    plan.undo()
    assert elsewhere.read_text() == SP_ON


def test_files_of_another_owner_and_special_files_are_refused(node: Node) -> None:
    sp = node.conf / "system-probe.yaml"
    as_attacker("rm", "-f", str(sp))
    as_attacker("sh", "-c", f"printf 'runtime_security_config:\\n  enabled: true\\n' > {sp}")
    with pytest.raises(UnsafePathError, match=f"owned by uid {NOBODY}"):
        plan_disable(node.conf)
    as_attacker("rm", "-f", str(sp))
    as_attacker("mkfifo", str(sp))  # opening it would block: refused before it is opened
    with pytest.raises(UnsafePathError, match="found a FIFO"):
        plan_disable(node.conf)
    assert issubclass(UnsafePathError, ConfigFileError)


# --- 2. undo and rollback that never clobber ---------------------------------------------------


def test_undo_refuses_to_write_through_a_planted_link(node: Node) -> None:
    sp = node.conf / "system-probe.yaml"
    plan = plan_disable(node.conf)
    plan.apply()
    before = _root_files(node)
    evil = node.profile / "evil.sh"
    as_attacker("ln", "-s", str(evil), str(node.conf / "new"))
    as_attacker("mv", "-f", str(node.conf / "new"), str(sp))

    with pytest.raises(PlanUndoError, match="a symlink"):
        plan.undo()
    assert plan.state == "partially-applied"
    assert [c.target for c in plan.applied_changes] == [str(sp)]
    assert plan.to_dict()["applied_changes"] == [str(sp)]
    assert not evil.exists()
    assert _root_files(node) == before

    plan.undo(force=True)  # replaces the link itself, keeps it as a backup
    assert plan.state == "undone"
    assert not evil.exists()
    assert _root_files(node) == before
    assert not sp.is_symlink()
    assert sp.read_text() == SP_ON
    assert (node.conf / "security-agent.yaml").read_text() == SA_ON
    kept = [p for p in node.conf.iterdir() if p.is_symlink() and p.name.endswith(".bak")]
    assert [os.readlink(p) for p in kept] == [str(evil)]


def test_undo_keeps_an_admins_later_edit(node: Node) -> None:
    sp = node.conf / "system-probe.yaml"
    plan = plan_disable(node.conf)
    plan.apply()
    edit = sp.read_text() + "# tuned by the admin after the plan\n"
    sp.write_text(edit)  # in place: same inode, new bytes

    with pytest.raises(PlanUndoError, match="different file"):
        plan.undo()
    assert sp.read_text() == edit

    plan.undo(force=True)
    assert sp.read_text() == SP_ON
    backups = [p.read_text() for p in node.conf.glob("system-probe.yaml.wpprotect-*.bak")]
    assert edit in backups  # what undo overwrote is kept


class _SwapThenFail:
    """A change that lets the attacker swap the first file, then fails: the plan rolls back."""

    target = "attacker"
    description = "swap system-probe.yaml for a link, then fail"

    def __init__(self, node: Node) -> None:
        self.node = node

    def diff(self) -> str:
        return ""

    def is_satisfied(self) -> bool:
        return False

    def apply(self) -> None:
        sp, new = self.node.conf / "system-probe.yaml", self.node.conf / "new"
        as_attacker("ln", "-s", str(self.node.profile / "evil.sh"), str(new))
        as_attacker("mv", "-f", str(new), str(sp))
        raise WPProtectError("the next change failed")

    def verify(self) -> None:
        pass

    def undo(self) -> None:
        pass


def test_rollback_refuses_to_write_through_a_planted_link(node: Node) -> None:
    files = plan_disable(node.conf)
    plan = Plan("swap during apply", [files.changes[0], _SwapThenFail(node)])
    before = _root_files(node)
    with pytest.raises(PlanApplyError, match=r"rollback incomplete.*a symlink"):
        plan.apply()
    assert plan.state == "partially-applied"
    assert not (node.profile / "evil.sh").exists()
    assert _root_files(node) == before
    plan.undo(force=True)
    assert (node.conf / "system-probe.yaml").read_text() == SP_ON


# --- 3. copy_out / flare dest -----------------------------------------------------------------


def _flare_source(n: Node) -> tuple[Path, bytes]:
    src = n.victim / "datadog-agent-2026-01-01-00-00-00.zip"
    data = b"PK fake flare holding api_key: " + b"a" * 32
    src.write_bytes(data)
    os.chmod(src, 0o600)
    return src, data


def test_copy_out_replaces_a_planted_link_instead_of_following_it(node: Node) -> None:
    src, data = _flare_source(node)
    dest = node.drop / src.name
    as_attacker("ln", "-s", str(node.shadow), str(dest))
    before = tree_digest(node.profile), node.shadow.read_bytes()

    out = HostPlatform(sudo=False).copy_out(str(src), node.drop)
    assert out == dest
    assert (tree_digest(node.profile), node.shadow.read_bytes()) == before
    assert node.shadow.read_bytes() == SHADOW
    st = os.lstat(dest)
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == 0
    assert dest.read_bytes() == data
    assert sorted(p.name for p in node.drop.iterdir()) == [src.name]  # no temp left behind


def test_copy_out_never_fills_a_file_the_attacker_precreated(node: Node) -> None:
    src, data = _flare_source(node)
    dest = node.drop / src.name
    as_attacker("sh", "-c", f"umask 0; : > {dest}")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666
    spy = subprocess.Popen(  # the attacker keeps a descriptor to the file it made
        [
            "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
            sys.executable, "-c",
            "import sys; f = open(sys.argv[1], 'rb'); print('ready', flush=True); "
            "sys.stdin.readline(); print(f.read().hex(), flush=True)",
            str(dest),
        ],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert spy.stdout is not None
    assert spy.stdout.readline().strip() == "ready"

    HostPlatform(sudo=False).copy_out(str(src), dest)
    seen, _ = spy.communicate("go\n", timeout=30)
    assert seen.strip() == ""  # its descriptor shows nothing of the flare
    st = os.lstat(dest)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == 0
    assert dest.read_bytes() == data
    assert hashlib.sha256(node.shadow.read_bytes()).digest() == hashlib.sha256(SHADOW).digest()


# --- 7. apply twice ---------------------------------------------------------------------------


def test_apply_twice_then_undo_really_restores(node: Node) -> None:
    os.chown(node.conf, 0, 0)
    sp, sa = node.conf / "system-probe.yaml", node.conf / "security-agent.yaml"
    plan = plan_disable(node.conf)
    plan.apply()
    applied = sp.read_bytes(), sa.read_bytes()
    assert plan.apply() is plan  # a no-op, not a reset
    assert plan.state == "applied"
    assert len(plan.applied_changes) == 2
    assert (sp.read_bytes(), sa.read_bytes()) == applied
    plan.undo()
    assert plan.state == "undone"
    assert (sp.read_text(), sa.read_text()) == (SP_ON, SA_ON)


# --- ConfigEditor.save and atomic_write refuse a symlink unless asked ---------------------------


def test_editor_save_does_not_follow_a_planted_link(node: Node) -> None:
    from wpprotect.config import ConfigEditor
    from wpprotect.config._io import atomic_write

    before = _root_files(node)
    sp = node.conf / "system-probe.yaml"
    editor = ConfigEditor.load(sp)
    editor.set("runtime_security_config.enabled", False)
    # after the load, the attacker swaps the file for a link to a root-only file
    as_attacker("ln", "-sfn", str(node.shadow), str(sp))
    with pytest.raises(UnsafePathError, match="symlink"):
        editor.save()
    with pytest.raises(UnsafePathError, match="symlink"):
        atomic_write(sp, b"x: 1\n")
    assert sp.is_symlink()
    assert _root_files(node) == before
