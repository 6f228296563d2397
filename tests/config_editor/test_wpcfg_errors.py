"""Bad input never half-works: a specific error naming file, line and key, and nothing written."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wpprotect.config._editor import ConfigEditor
from wpprotect.errors import (
    ConfigConflictError,
    ConfigFileError,
    ConfigParseError,
    ConfigStructureError,
    InvalidArgumentError,
    WPProtectError,
)

API_KEY = "0123456789abcdef0123456789abcdef"


def snapshot(directory: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``directory``: type, mode, owner, size, mtime and content or target."""
    out: dict[str, tuple[Any, ...]] = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            p = Path(root) / name
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                extra: Any = p.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            else:
                extra = None
            out[str(p.relative_to(directory))] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
                extra,
            )
    return out


@contextmanager
def unchanged(directory: Path) -> Iterator[None]:
    before = snapshot(directory)
    try:
        yield
    finally:
        assert snapshot(directory) == before


def write(name: str, content: bytes) -> Callable[[Path], Path]:
    def setup(d: Path) -> Path:
        p = d / name
        p.write_bytes(content)
        return p

    return setup


def fifo(d: Path) -> Path:
    p = d / "system-probe.yaml"
    os.mkfifo(p)
    return p


def directory(d: Path) -> Path:
    p = d / "system-probe.yaml"
    p.mkdir()
    (p / "inner").write_text("a: 1\n")
    return p


def chardev(d: Path) -> Path:
    p = d / "system-probe.yaml"
    os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # the same device as /dev/null
    return p


def unix_socket(d: Path) -> Path:
    p = d / "s.yaml"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()
    return p


def missing(d: Path) -> Path:
    return d / "system-probe.yaml"


def dangling_link(d: Path) -> Path:
    p = d / "system-probe.yaml"
    p.symlink_to(d / "nowhere.yaml")
    return p


def link_to_file(d: Path) -> Path:
    (d / "real.yaml").write_text("runtime_security_config:\n  enabled: true\n")
    p = d / "system-probe.yaml"
    p.symlink_to("real.yaml")
    return p


def big(d: Path) -> Path:
    p = d / "system-probe.yaml"
    p.write_text("a: " + "x" * 5000 + "\n")
    return p


@dataclass
class Case:
    id: str
    setup: Callable[[Path], Path]
    error: type[WPProtectError]
    line: int | None = None
    key: str | None = None
    set_path: str | tuple[str, ...] = "runtime_security_config.enabled"
    value: Any = False
    follow_symlinks: bool = True
    fragment: str = ""
    secret: str | None = None


CASES = [
    # -- not YAML / unusable bytes -------------------------------------------------------
    Case("unclosed-flow", write("c.yaml", b"a: [1, 2\nb: 3\n"), ConfigParseError, fragment="YAML"),
    Case("mapping-in-scalar", write("c.yaml", b"ok: 1\na: b: c\n"), ConfigParseError, line=2),
    Case("bad-indentation", write("c.yaml", b"a:\n  b: 1\n c: 2\n"), ConfigParseError, line=3),
    Case("unclosed-quote", write("c.yaml", b'a: "abc\nb: 1\n'), ConfigParseError),
    Case("duplicate-top", write("c.yaml", b"a: 1\nb: 2\na: 3\n"), ConfigParseError, 3, "a"),
    Case(
        "duplicate-nested",
        write("c.yaml", b"x:\n  enabled: 1\n  enabled: 2\n"),
        ConfigParseError,
        3,
        "enabled",
    ),
    Case(
        "duplicate-secret-not-echoed",
        write("c.yaml", f"api_key: {API_KEY}\napi_key: {API_KEY[::-1]}\n".encode()),
        ConfigParseError,
        2,
        "api_key",
        secret=API_KEY,
    ),
    Case("tab-indent", write("c.yaml", b"a:\n\tb: 1\n"), ConfigParseError, 2, fragment="tab"),
    Case("tab-after-spaces", write("c.yaml", b"a:\n  b: 1\n  \tc: 2\n"), ConfigParseError, 3),
    Case("latin1-byte", write("c.yaml", b"a: 1\nb: 2\nc: caf\xe9\n"), ConfigParseError, 3),
    Case("invalid-utf8", write("c.yaml", b"a: \xff\xfe\n"), ConfigParseError, 1, fragment="UTF-8"),
    Case(
        "utf16", write("c.yaml", "a: 1\n".encode("utf-16")), ConfigParseError, 1, fragment="UTF-16"
    ),
    Case("nul-byte", write("c.yaml", b"a: 1\nb: \x00\n"), ConfigParseError, 2),
    Case("mixed-newlines", write("c.yaml", b"a: 1\r\nb: 2\n"), ConfigParseError, 2),
    Case("stray-cr", write("c.yaml", b"a: 1\rb: 2\n"), ConfigParseError, 1),
    Case(
        "two-documents",
        write("c.yaml", b"a: 1\n---\nb: 2\n"),
        ConfigParseError,
        2,
        fragment="several YAML documents",
    ),
    # -- wrong shape -------------------------------------------------------------------------
    Case("root-list", write("c.yaml", b"- a\n- b\n"), ConfigStructureError, 1),
    Case("root-scalar", write("c.yaml", b"just text\n"), ConfigStructureError, 1),
    Case("root-int", write("c.yaml", b"42\n"), ConfigStructureError, 1),
    Case(
        "through-scalar",
        write("c.yaml", b"# cws\nruntime_security_config: true\n"),
        ConfigStructureError,
        2,
        "runtime_security_config.enabled",
    ),
    Case(
        "through-list",
        write("c.yaml", b"runtime_security_config:\n  - enabled\n"),
        ConfigStructureError,
        1,
        "runtime_security_config.enabled",
    ),
    Case(
        "through-nested-scalar",
        write("c.yaml", b"runtime_security_config:\n  network: off\n"),
        ConfigStructureError,
        2,
        "runtime_security_config.network.enabled",
        set_path="runtime_security_config.network.enabled",
    ),
    Case(
        "bad-value-type",
        write("c.yaml", b"runtime_security_config:\n  enabled: true\n"),
        InvalidArgumentError,
        key="runtime_security_config.enabled",
        value=object(),
    ),
    Case(
        "empty-path-segment",
        write("c.yaml", b"a: 1\n"),
        InvalidArgumentError,
        set_path="runtime_security_config..enabled",
    ),
    # -- not a usable file ---------------------------------------------------------------------
    Case("directory", directory, ConfigFileError, fragment="directory"),
    Case("fifo", fifo, ConfigFileError, fragment="FIFO"),
    Case("char-device", chardev, ConfigFileError, fragment="device"),
    Case("socket", unix_socket, ConfigFileError, fragment="socket"),
    Case("missing", missing, ConfigFileError, fragment="no such file"),
    Case("dangling-symlink", dangling_link, ConfigFileError, fragment="no such file"),
    Case(
        "symlink-refused", link_to_file, ConfigFileError, follow_symlinks=False, fragment="symlink"
    ),
    Case("too-large", big, ConfigFileError, fragment="too large"),
]


class SmallEditor(ConfigEditor):
    MAX_BYTES = 4096


def load_set_save(cls: type[ConfigEditor], case: Case, target: Path) -> None:
    ed = cls.load(target, follow_symlinks=case.follow_symlinks)
    ed.set(case.set_path, case.value)
    ed.save()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(tmp_path: Path, case: Case) -> None:
    d = tmp_path / "etc"
    d.mkdir()
    target = case.setup(d)
    cls = SmallEditor if case.id == "too-large" else ConfigEditor
    with unchanged(d), pytest.raises(case.error) as info:
        load_set_save(cls, case, target)
    err = info.value
    msg = str(err)
    if case.error is not InvalidArgumentError:
        assert str(target) in msg
        assert err.path == target
    if case.line is not None:
        assert err.line == case.line
        assert f"{target}:{case.line}" in msg
    if case.key is not None:
        assert err.key == case.key
        assert repr(case.key) in msg
    assert case.fragment.lower() in msg.lower()
    if case.secret:
        assert case.secret not in msg
        assert case.secret[::-1] not in msg
    assert isinstance(err, WPProtectError)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25


def test_conflict_when_file_changed_on_disk(tmp_path: Path) -> None:
    f = tmp_path / "system-probe.yaml"
    f.write_text("runtime_security_config:\n  enabled: true\n")
    ed = ConfigEditor.load(f)
    ed.set("runtime_security_config.enabled", False)
    f.write_text("runtime_security_config:\n  enabled: true\n# someone else\n")
    with unchanged(tmp_path), pytest.raises(ConfigConflictError) as info:
        ed.save()
    assert str(f) in str(info.value)
    backup = ed.save(force=True)
    assert f.read_text() == "runtime_security_config:\n  enabled: false\n"
    assert backup is not None
    assert backup.read_text().endswith("# someone else\n")


def test_conflict_when_file_removed(tmp_path: Path) -> None:
    f = tmp_path / "system-probe.yaml"
    f.write_text("a: 1\n")
    ed = ConfigEditor.load(f)
    ed.set("a", 2)
    f.unlink()
    with unchanged(tmp_path), pytest.raises(ConfigConflictError, match="removed"):
        ed.save()
    assert ed.save(force=True) is None
    assert f.read_text() == "a: 2\n"


def test_save_refuses_symlink_swapped_in_after_no_follow_load(tmp_path: Path) -> None:
    f = tmp_path / "system-probe.yaml"
    f.write_text("a: 1\n")
    ed = ConfigEditor.load(f, follow_symlinks=False)
    ed.set("a", 2)
    (tmp_path / "other.yaml").write_text("a: 1\n")
    f.unlink()
    f.symlink_to("other.yaml")
    with unchanged(tmp_path), pytest.raises(ConfigFileError, match="symlink"):
        ed.save()


def test_save_without_path() -> None:
    ed = ConfigEditor.from_text("a: 1\n")
    ed.set("a", 2)
    with pytest.raises(ConfigFileError, match="no path"):
        ed.save()


def test_from_text_with_path_does_not_overwrite_a_different_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("a: 1\nb: 2\n")
    ed = ConfigEditor.from_text("a: 1\n", path=f)
    ed.set("a", 5)
    with unchanged(tmp_path), pytest.raises(ConfigConflictError):
        ed.save()


def test_failed_write_leaves_file_and_no_temp(tmp_path: Path) -> None:
    # Replacing the target with a directory between load and save makes the write impossible.
    f = tmp_path / "c.yaml"
    f.write_text("a: 1\n")
    ed = ConfigEditor.load(f)
    ed.set("a", 2)
    f.unlink()
    f.mkdir()
    with unchanged(tmp_path), pytest.raises(ConfigFileError):
        ed.save(force=True)


def test_error_on_get_through_scalar_names_key_and_line() -> None:
    ed = ConfigEditor.from_text("x: 1\nrsc: true\n", path="/etc/datadog-agent/system-probe.yaml")
    with pytest.raises(ConfigStructureError) as info:
        ed.get("rsc.enabled")
    assert str(info.value) == (
        "cannot read 'rsc.enabled': 'rsc' is a scalar, not a mapping "
        "(/etc/datadog-agent/system-probe.yaml:2, key 'rsc.enabled')"
    )


def test_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    f = tmp_path / "security-agent.yaml"
    f.write_bytes(b"")
    ed = ConfigEditor.load(f)
    assert ed.get("runtime_security_config.enabled", "absent") == "absent"
    ed.set("runtime_security_config.enabled", False)
    ed.save()
    assert f.read_text() == "runtime_security_config:\n  enabled: false\n"


def test_failed_set_leaves_the_document_as_it_was(upstream: Path) -> None:
    text = (upstream / "datadog-agent" / "security-agent.yaml.example").read_text()
    ed = ConfigEditor.from_text(text)
    with pytest.raises(InvalidArgumentError):
        ed.set("runtime_security_config.enabled", object())  # would need an activation first
    assert ed.text == text
    assert not ed.changed
    ed.set("runtime_security_config.enabled", False)
    after = ed.text
    with pytest.raises(ConfigStructureError):
        ed.set("runtime_security_config.enabled.deeper", 1)
    assert ed.text == after


def test_unrepresentable_value_put_in_data_by_hand() -> None:
    ed = ConfigEditor.from_text("a: 1\n", path="/etc/x.yaml")
    ed.data["b"] = object()
    with pytest.raises(ConfigStructureError, match="cannot represent") as info:
        _ = ed.text
    assert "/etc/x.yaml" in str(info.value)
    assert repr(ed) == "<ConfigEditor path='/etc/x.yaml' changed=?>"
    del ed.data["b"]
    assert ed.text == "a: 1\n"


def test_batch_is_all_or_nothing(upstream: Path) -> None:
    text = (upstream / "datadog-agent" / "system-probe.yaml.example").read_text()
    ed = ConfigEditor.from_text(text)

    def three_edits() -> None:
        with ed.batch():
            ed.set("runtime_security_config.enabled", False)  # activates commented lines
            ed.set("runtime_security_config.network.classifier_priority", 4)
            ed.set("runtime_security_config.enabled.x", 1)  # through a scalar: fails

    with pytest.raises(ConfigStructureError):
        three_edits()
    assert ed.text == text
    assert not ed.changed
    with ed.batch():
        ed.set("runtime_security_config.enabled", False)
        ed.set("runtime_security_config.network.classifier_priority", 4)
    assert ed.get("runtime_security_config.network.classifier_priority") == 4
    assert ed.changed
