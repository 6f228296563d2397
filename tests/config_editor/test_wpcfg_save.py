"""save(): atomic, mode/owner/group kept, backups, symlinks, temp files; the _io helpers."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from wpprotect.config import _io
from wpprotect.config._editor import ConfigEditor
from wpprotect.errors import ConfigFileError


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if _io.TMP_MARKER in p.name)


@pytest.mark.root
def test_save_keeps_mode_owner_group(tmp_path: Path) -> None:
    f = tmp_path / "system-probe.yaml"
    f.write_text("runtime_security_config:\n  enabled: true\n")
    os.chown(f, 4321, 8765)
    f.chmod(0o640)
    ino = f.stat().st_ino
    ed = ConfigEditor.load(f)
    ed.set("runtime_security_config.enabled", False)
    bak = ed.save()
    st = f.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4321, 8765, 0o640)
    assert st.st_ino != ino  # replaced by rename, not rewritten in place
    assert bak is not None
    bst = bak.stat()
    assert (bst.st_uid, bst.st_gid, bst.st_mode & 0o7777) == (4321, 8765, 0o640)
    assert bak.read_text() == "runtime_security_config:\n  enabled: true\n"
    assert leftovers(tmp_path) == []


def test_backup_name_and_no_backup(tmp_path: Path) -> None:
    f = tmp_path / "security-agent.yaml"
    f.write_text("a: 1\n")
    ed = ConfigEditor.load(f)
    ed.set("a", 2)
    bak = ed.save()
    assert bak is not None
    assert bak.parent == tmp_path
    assert bak.name.startswith("security-agent.yaml.wpprotect-")
    assert bak.name.endswith("Z.bak")
    ed.set("a", 3)
    assert ed.save(backup=False) is None
    assert f.read_text() == "a: 3\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["security-agent.yaml", bak.name])


def test_two_backups_in_a_row_do_not_collide(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("a: 1\n")
    paths = {_io.backup_file(f) for _ in range(5)}
    assert len(paths) == 5
    assert all(p.read_text() == "a: 1\n" for p in paths)


def test_save_without_change_writes_nothing(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("a: 1\n")
    before = f.stat()
    ed = ConfigEditor.load(f)
    ed.set("a", 1)
    assert not ed.changed
    assert ed.save() is None
    after = f.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_second_save_after_save_is_a_no_op_and_diff_resets(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("a: 1\n")
    ed = ConfigEditor.load(f)
    ed.set("a", 2)
    ed.save(backup=False)
    assert ed.diff() == ""
    assert ed.original_text == "a: 2\n"
    ed.set("a", 3)  # edits continue from the saved state; no conflict with our own write
    ed.save(backup=False)
    assert f.read_text() == "a: 3\n"


def test_symlink_is_followed_and_kept_on_request(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "system-probe.yaml"
    real.write_text("a: 1\n")
    real.chmod(0o600)
    link = tmp_path / "system-probe.yaml"
    link.symlink_to(real)
    ed = ConfigEditor.load(link)
    ed.set("a", 2)
    bak = ed.save(follow_symlinks=True)
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert real.read_text() == "a: 2\n"
    assert real.stat().st_mode & 0o777 == 0o600
    assert bak is not None
    assert bak.parent == real_dir  # written in the target's directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real", "system-probe.yaml"]


def test_atomic_write_new_file_and_explicit_mode(tmp_path: Path) -> None:
    f = tmp_path / "new.yaml"
    _io.atomic_write(f, b"a: 1\n", mode=0o600)
    assert f.read_bytes() == b"a: 1\n"
    assert f.stat().st_mode & 0o777 == 0o600
    _io.atomic_write(f, b"a: 2\n")
    assert f.stat().st_mode & 0o777 == 0o600  # kept from the existing file
    assert leftovers(tmp_path) == []


def test_atomic_write_refuses_to_replace_a_directory(tmp_path: Path) -> None:
    d = tmp_path / "c.yaml"
    d.mkdir()
    with pytest.raises(ConfigFileError, match="directory"):
        _io.atomic_write(d, b"x")
    assert leftovers(tmp_path) == []


def test_atomic_write_into_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as info:
        _io.atomic_write(tmp_path / "nope" / "c.yaml", b"x")
    assert "nope" in str(info.value)


def test_restore_backup(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("a: 1\n")
    f.chmod(0o640)
    bak = _io.backup_file(f)
    _io.atomic_write(f, b"a: 2\n")
    _io.restore_backup(bak, f)
    assert f.read_text() == "a: 1\n"
    assert f.stat().st_mode & 0o777 == 0o640
    assert bak.exists()


def test_crlf_and_no_final_newline_saved_as_loaded(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_bytes(b"# win\r\na: 1\r\nb: 2")
    ed = ConfigEditor.load(f)
    ed.set("b", 3)
    ed.save(backup=False)
    assert f.read_bytes() == b"# win\r\na: 1\r\nb: 3"


# -- crash safety -------------------------------------------------------------------------
#
# Writers are forked from this (already initialised) process so that each of the 200+ kills
# costs milliseconds, not an interpreter start. A forked writer saves in a loop until SIGKILL.


def _writer_loop(work: Callable[[int], None]) -> None:
    """Run in the forked child: never returns."""
    try:
        n = 0
        while True:
            work(n)
            n += 1
    except BaseException:
        os._exit(3)
    os._exit(0)  # pragma: no cover


def _kill_at_random(work: Callable[[int], None], rng: random.Random, max_delay: float) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _writer_loop(work)
    time.sleep(rng.uniform(0.0, max_delay))
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    # Killed by us, not crashed on its own: a crash would hide the test's point.
    assert os.WIFSIGNALED(status), status
    assert os.WTERMSIG(status) == signal.SIGKILL
    return pid


def _doc(tag: str) -> str:
    lines = [f"# writer state {tag}", "runtime_security_config:"]
    lines += [f"  key_{i}: {tag * 400}" for i in range(8)]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_sigkill_during_save_never_leaves_a_partial_file(tmp_path: Path) -> None:
    f = tmp_path / "system-probe.yaml"
    a_text, b_text = _doc("A"), _doc("B")
    f.write_text(a_text)
    # Two editors whose texts are the two states; each forked writer saves them alternately
    # (rounds alternate which goes first), with force=True as each overwrites the other's write.
    editors = [ConfigEditor.from_text(a_text, path=f), ConfigEditor.from_text(a_text, path=f)]
    for i in range(8):
        editors[0].set(f"runtime_security_config.key_{i}", "B" * 400)
    editors[0].data.yaml_set_start_comment("writer state B")
    assert editors[0].text == b_text
    # Kill within about three saves: measured here, as the machine's speed varies.
    start = time.monotonic()
    for ed in editors * 2:
        ed.save(backup=False, force=True)
    max_delay = 3 * (time.monotonic() - start) / 4
    big = tmp_path / "big.bin"
    big_a, big_b = b"a" * (4 << 20), b"b" * (4 << 20)
    big.write_bytes(big_a)

    rng = random.Random(20240501)  # noqa: S311 - timing jitter, not cryptography
    seen: set[str] = set()
    big_seen: set[bytes] = set()
    for round_no in range(200):
        backup = round_no % 4 == 0

        def save_pair(n: int, backup: bool = backup, first: int = round_no % 2) -> None:
            # Rounds alternate which state is written first, so both show up however fast
            # or slow this machine is.
            editors[(n + first) % 2].save(backup=backup, force=True)

        _kill_at_random(save_pair, rng, max_delay=max_delay)
        text = f.read_text()
        assert text in (a_text, b_text), text[:200]
        seen.add(text)

        def write_big(n: int) -> None:
            _io.atomic_write(big, big_b if n % 2 else big_a)

        if round_no % 4 == 0:
            _kill_at_random(write_big, rng, max_delay=0.03)
            data = big.read_bytes()
            assert data in (big_a, big_b), len(data)
            big_seen.add(data[:1])
    # The kills landed while writes were happening: both states were observed.
    assert seen == {a_text, b_text}
    # Backups written before a kill are complete copies of a state, never partial.
    backups = [p for p in tmp_path.iterdir() if p.name.endswith(".bak")]
    assert backups
    assert all(p.read_text() in (a_text, b_text) for p in backups)
    # Killed writers may leave temp files (documented); they are recognisable and never read.
    for p in tmp_path.iterdir():
        if _io.TMP_MARKER in p.name:
            assert p.name.startswith(
                (".system-probe.yaml.wpprotect-tmp-", ".big.bin.wpprotect-tmp-")
            )
    assert {
        p.name
        for p in tmp_path.iterdir()
        if _io.TMP_MARKER not in p.name and not p.name.endswith(".bak")
    } == {"system-probe.yaml", "big.bin"}


@pytest.mark.root
def test_non_root_writer_cannot_change_owner_so_refuses() -> None:
    # A writer that may not chown (here: a child that dropped to `nobody`) must not replace a
    # root-owned file with one it owns: it refuses, and leaves neither change nor temp file.
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="wpcfg-"))
    try:
        d.chmod(0o777)
        f = d / "system-probe.yaml"
        f.write_text("runtime_security_config:\n  enabled: true\n")
        f.chmod(0o666)
        before = (f.read_bytes(), f.stat().st_ino, f.stat().st_uid)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(read_end)
            code = "unexpected"
            try:
                os.setgid(65534)
                os.setuid(65534)
                ed = ConfigEditor.load(f)
                ed.set("runtime_security_config.enabled", False)
                ed.save(backup=False)
                code = "saved"
            except ConfigFileError as exc:
                code = f"ConfigFileError:{exc}"
            except BaseException as exc:
                code = f"{type(exc).__name__}:{exc}"
            finally:
                os.write(write_end, code.encode())
                os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as pipe:
            result = pipe.read().decode()
        assert os.WIFEXITED(status)
        assert result.startswith("ConfigFileError:cannot give the new file the owner 0:0")
        assert str(f) in result
        assert (f.read_bytes(), f.stat().st_ino, f.stat().st_uid) == before
        assert sorted(p.name for p in d.iterdir()) == ["system-probe.yaml"]
    finally:
        shutil.rmtree(d)
