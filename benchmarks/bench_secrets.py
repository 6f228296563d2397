"""Flare secret scan on hostile and large members, against reading the same bytes from the zip.

Two archives: one member that is a single 1 MB line of hex with a URL in it (the rules used to
backtrack quadratically over such a line), and one realistic 32 MiB agent log with a few planted
secrets. The baseline is ``zipfile`` reading the member's bytes in the same run, so the ratio
says what the scan adds to decompression.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path

from wpprotect.agent._secrets import scan_zip

MiB = 1 << 20
LOG_LINES = (
    b"2025-01-01 00:00:%02d UTC | CORE | INFO | (pkg/collector/worker/check_logger.go:%d in "
    b"CheckFinished) | check:cpu | Done running check, next run in 15s\n",
    b"2025-01-01 00:00:%02d UTC | SECURITY | DEBUG | (pkg/security/probe/probe.go:%d in "
    b"handleEvent) | event open pid 4242 path /var/lib/kubelet/pods token=********\n",
    b"2025-01-01 00:00:%02d UTC | CORE | WARN | (comp/forwarder/transaction.go:%d in "
    b"Process) | retrying https://7-59-0-app.agent.datadoghq.com/api/v1/series (500)\n",
)
PLANTED = b"dsn: postgres://app:s3cr3t-pass@db:5432/x\napi_key: 0123456789abcdef0123456789abcdef\n"


def _hex_line() -> bytes:
    hexed = b"0123456789abcdef" * (MiB // 32)
    return hexed + b" https://user:hunter2hunter2@db.internal/x " + hexed + b"\n"


def _log() -> bytes:
    lines = [LOG_LINES[i % 3] % (i % 60, i % 900) for i in range(3000)]
    block = b"".join(lines)
    body = block * (32 * MiB // len(block))
    middle = len(body) // 2
    middle = body.index(b"\n", middle) + 1
    return body[:middle] + PLANTED + body[middle:]


def _measure(name: str, data: bytes, tmp: Path) -> None:
    archive = tmp / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(f"host/{name}", data)
    started = time.perf_counter()
    with zipfile.ZipFile(archive) as zf, zf.open(f"host/{name}") as fh:
        while fh.read(MiB):
            pass
    base = time.perf_counter() - started
    started = time.perf_counter()
    findings = scan_zip(archive)
    scan = time.perf_counter() - started
    assert findings, name
    mb = len(data) / 1e6
    print(f"{name}: {mb:.1f} MB, {len(findings)} finding(s)")
    print(f"  zipfile read (baseline): {base:.3f} s ({mb / base:.0f} MB/s)")
    print(f"  scan_zip:                {scan:.3f} s ({mb / scan:.0f} MB/s, {scan / base:.1f}x)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="wpprotect-bench-") as tmp:
        _measure("hex-line.txt", _hex_line(), Path(tmp))
        _measure("agent.log", _log(), Path(tmp))


if __name__ == "__main__":
    main()
