"""Attacks on the flare secret scan: hostile archives and lines from a node someone else controls.

Each test performs the attack that found the problem and asserts the safe outcome (every byte
scanned, or a typed error) and that the archive and its directory are left as they were.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.agent.test_agent_secrets import CASES
from tests.attacks.conftest import HARD_LIMIT, run_bounded, tree_digest
from wpprotect.agent import Flare, _secrets
from wpprotect.agent._secrets import scan_text, scan_zip
from wpprotect.errors import FlareError, InvalidArgumentError

MiB = 1 << 20


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def overlapping_bomb(entries: int, size: int) -> bytes:
    """A zip whose ``entries`` central-directory records all point at one local entry of
    ``size`` zero bytes, deflated: small on disk, ``entries * size`` bytes to read."""
    name = b"logs/agent.log"
    plain = bytes(size)
    packed = _deflate(plain)
    crc = zlib.crc32(plain)
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(packed), size, len(name), 0
    )
    head = local + name + packed
    record = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(packed), size, len(name), 0, 0, 0, 0, 0, 0,
        )
        + name
    )  # fmt: skip
    directory = record * entries
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(directory), len(head), 0)
    return head + directory + end


def _flare(archive: Path) -> Flare:
    return Flare(
        archive=archive,
        files=(),
        remote_path="/tmp/x.zip",
        case_id=None,
        email=None,
        command=("agent", "flare"),
        output="",
        target="host",
    )


# -- quadratic patterns ------------------------------------------------------------------------

HOSTILE_LINES = {
    # 100 KB of this took 8.5 s (uri-password backtracked over the hex for every start).
    "hex line with a URL": "h = '0123456789abcdef' * 31250\n"
    "line = h[:250000] + ' https://user:hunter2hunter2@db/x ' + h[250000:]",
    "pass repeated": "line = 'pass' * 250000",
    "password key chars": "line = 'password' + 'a' * 1000000",
    "scheme repeated": "line = 'a://' * 250000",
    "userinfo without @": "line = 'http://x:' * 110000",
    "separators without value": "line = 'token' + ' ' * 1000000",
    "bearer repeated": "line = 'Bearer ' * 140000",
    "pem header words": "line = '-----BEGIN ' + 'A ' * 500000",
    "hex run": "line = '0123456789abcdef' * 62500",
}


@pytest.mark.parametrize("build", HOSTILE_LINES.values(), ids=HOSTILE_LINES.keys())
def test_megabyte_hostile_line_is_scanned_in_bounded_time(build: str) -> None:
    code = (
        "import json\n"
        "from wpprotect.agent._secrets import scan_text\n"
        f"{build}\n"
        "found = scan_text('f.log', 'before\\n' + line + '\\nafter')\n"
        "print(json.dumps([[f.kind, f.line] for f in found]))\n"
    )
    found = json.loads(run_bounded(code))
    if "https://user:" in build:
        assert found == [["uri-password", 2]]
    else:
        assert all(line == 2 for _, line in found)


# -- every byte of every member -----------------------------------------------------------------


def test_secret_past_32_mib_of_a_member_is_found(tmp_path: Path) -> None:
    line = b"2025-01-01 00:00:00 UTC | CORE | INFO | (pkg/collector/runner.go:42) check ran ok\n"
    body = line * (33 * MiB // len(line))
    lines = body.count(b"\n")
    body += b"retrying with key AKIAIOSFODNN7EXAMPLE\n" + line * 10
    archive = tmp_path / "flare.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("host/logs/agent.log", body)
    before = tree_digest(tmp_path)
    findings = _flare(archive).scan_secrets()
    assert [(f.file, f.line, f.kind, f.redacted) for f in findings] == [
        ("host/logs/agent.log", lines + 1, "aws-access-key", "********MPLE")
    ]
    assert tree_digest(tmp_path) == before


def test_secret_across_a_chunk_boundary_is_found() -> None:
    filler = b"x" * 99 + b"\n"
    for kind, line, _ in CASES:
        data = line.encode()
        # the secret line straddles the first chunk boundary, split in its middle
        pad = filler * ((_secrets._CHUNK - len(data) // 2) // len(filler))
        pad += b"." * (_secrets._CHUNK - len(data) // 2 - len(pad))
        text = pad + data + b"\n" + filler
        found = scan_text("f", text)
        assert kind in [f.kind for f in found if f.line == pad.count(b"\n") + 1], kind


def test_secret_across_a_long_line_window_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small chunks and windows (the overlap stays what the rules need), so a window boundary
    # falls every few kilobytes of a line with no newline.
    monkeypatch.setattr(_secrets, "_CHUNK", 4096)
    monkeypatch.setattr(_secrets, "_WINDOW", 32 * 1024)
    first_accept = 9 * 4096 - _secrets._OVERLAP  # the first window ends where 9 chunks do
    for kind, line, _ in CASES:
        data = line.encode()
        for offset in range(first_accept - len(data) - 2, first_accept + 3):
            text = b"." * offset + b" " + data + b" " + b"." * (60 * 1024)
            found = scan_text("f", text)
            assert kind in [f.kind for f in found], (kind, offset)
            assert len(found) == len(scan_text("f", data)), (kind, offset)


# -- zip bombs and bounds -----------------------------------------------------------------------


def _scan_in_child(archive: Path, limit: float) -> tuple[str, str]:
    code = (
        "import json\n"
        "from pathlib import Path\n"
        "from wpprotect.agent._secrets import scan_zip\n"
        "from wpprotect.errors import FlareError\n"
        "try:\n"
        f"    print(json.dumps(['ok', str(scan_zip(Path({str(archive)!r})))]))\n"
        "except FlareError as exc:\n"
        "    print(json.dumps([type(exc).__name__, str(exc)]))\n"
    )
    name, message = json.loads(run_bounded(code, limit))
    return name, message


def test_overlapping_entry_bomb_fails_closed(tmp_path: Path) -> None:
    # 2,000 entries x 32 MiB over one deflated entry: a ~130 KB file that took ~28 min to scan.
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(overlapping_bomb(2000, 32 * MiB))
    assert archive.stat().st_size < 200_000
    before = tree_digest(tmp_path)
    name, message = _scan_in_child(archive, HARD_LIMIT)
    assert name == "FlareError"
    assert "'logs/agent.log' and 'logs/agent.log' overlap" in message
    assert "nothing was scanned" in message
    assert tree_digest(tmp_path) == before


def test_distinct_entry_bomb_stops_at_the_default_total_bound(tmp_path: Path) -> None:
    # The same expansion without overlaps: 40 real entries of 32 MiB of zeros (1.3 MB on disk).
    # The scan reads up to the 1 GiB default and stops with the typed error; the limit is wider
    # than the others because reading a gigabyte is the expected work here.
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(40):
            zf.writestr(f"host/logs/{i}.log", bytes(32 * MiB))
    before = tree_digest(tmp_path)
    name, message = _scan_in_child(archive, 3 * HARD_LIMIT)
    assert name == "FlareError"
    assert "more than 1073741824 bytes (passed while reading 'host/logs/32.log')" in message
    assert "max_total_bytes=" in message
    assert tree_digest(tmp_path) == before


def test_total_bound_names_the_member_and_the_keyword(tmp_path: Path) -> None:
    archive = tmp_path / "flare.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"host/log{i}.txt", b"ok\n" * (MiB // 3))
    before = tree_digest(tmp_path)
    with pytest.raises(FlareError) as info:
        _flare(archive).scan_secrets(max_total_bytes=2 * MiB)
    message = str(info.value)
    assert "more than 2097152 bytes" in message
    assert "'host/log2.txt'" in message
    assert "max_total_bytes=" in message
    assert str(archive) in message
    assert _flare(archive).scan_secrets(max_total_bytes=4 * MiB) == []
    assert tree_digest(tmp_path) == before


def test_entry_count_bound(tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(11):
            zf.writestr(f"host/{i}.txt", b"ok\n")
    before = tree_digest(tmp_path)
    with pytest.raises(FlareError, match=r"11 entries, more than the 10 .*max_members="):
        _flare(archive).scan_secrets(max_members=10)
    assert _flare(archive).scan_secrets(max_members=11) == []
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("bound", [0, -1, True, 1.5, "1"])
def test_bounds_must_be_positive_integers(tmp_path: Path, bound: object) -> None:
    with pytest.raises(InvalidArgumentError):
        scan_zip(tmp_path / "none.zip", max_total_bytes=bound)  # type: ignore[arg-type]


def test_findings_bound(tmp_path: Path) -> None:
    archive = tmp_path / "keys.zip"
    keys = b"".join(b"%032x\n" % i for i in range(1, _secrets.MAX_FINDINGS + 2))
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("keys.txt", keys)
    with pytest.raises(FlareError, match=r"more than 100000 secrets found .*'keys.txt'"):
        scan_zip(archive)


# -- damaged archives: always FlareError, never the zip library's own exceptions -----------------


def _member_zip(data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        zf.writestr("host/agent.log", data)
    return out.getvalue()


def _corrupt(raw: bytes, find: bytes, replace: bytes) -> bytes:
    at = raw.index(find)
    return raw[:at] + replace + raw[at + len(find) :]


def _damaged() -> dict[str, bytes]:
    plain = b"the agent log line\n" * 2000
    good = _member_zip(plain)
    packed = _deflate(plain)
    stored = _member_zip(plain, zipfile.ZIP_STORED)
    return {
        "not a zip": b"PK\x03\x04 not really",
        "truncated": good[: len(good) // 2],
        "corrupt deflate stream (zlib.error)": _corrupt(good, packed[:8], b"\xff" * 8),
        "bad CRC (BadZipFile)": _corrupt(stored, b"the agent", b"THE agent"),
        # general-purpose flag bit 0 in both headers: zipfile raises RuntimeError
        "encrypted member (RuntimeError)": stored.replace(
            b"PK\x03\x04\x14\x00\x00\x00", b"PK\x03\x04\x14\x00\x01\x00"
        ).replace(b"PK\x01\x02\x14\x03\x14\x00\x00\x00", b"PK\x01\x02\x14\x03\x14\x00\x01\x00"),
        # compression method 99 in both headers: NotImplementedError
        "unknown compression method (NotImplementedError)": stored.replace(
            b"PK\x03\x04\x14\x00\x00\x00\x00\x00", b"PK\x03\x04\x14\x00\x00\x00\x63\x00"
        ).replace(
            b"PK\x01\x02\x14\x03\x14\x00\x00\x00\x00\x00",
            b"PK\x01\x02\x14\x03\x14\x00\x00\x00\x63\x00",
        ),
    }  # fmt: skip


@pytest.mark.parametrize("raw", _damaged().values(), ids=_damaged().keys())
def test_damaged_archive_raises_flare_error(tmp_path: Path, raw: bytes) -> None:
    archive = tmp_path / "flare.zip"
    archive.write_bytes(raw)
    before = tree_digest(tmp_path)
    with pytest.raises(FlareError, match="could not be read") as info:
        _flare(archive).scan_secrets()
    assert info.value.path == archive
    assert tree_digest(tmp_path) == before
