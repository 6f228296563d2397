"""Scan (or measure) the kernel an agent container sees, from outside it.

The read-only reader (:mod:`wpprotect.tc._remote_reader`, a standard-library-only script) is sent
over stdin to the agent image's embedded Python, ``/opt/datadog-agent/embedded/bin/python3 -``,
run in the agent's ``system-probe`` container (fallback ``agent``): that container has the
capabilities a read needs and, with ``hostPID``, the node's processes and so its namespaces.
Nothing is installed, written or left running there. The reader prints one line,
``{"wire": 1, "zlib": ...}``, holding the raw kernel records; here they are replayed through the
same decoding (:class:`~wpprotect.tc._netlink.RecordedReader`,
:func:`~wpprotect.tc._bpfsys.decode_prog_info`) and assessment as a local scan.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wpprotect.errors import (
    AgentNotFoundError,
    CapabilityError,
    ExecError,
    InvalidArgumentError,
    TCError,
    UnsupportedAgentError,
)
from wpprotect.tc import _bpfsys, _measure, _netlink, _netns
from wpprotect.tc._inspector import RecordedNetns, TCInspector, _RawNetns, read_netns

if TYPE_CHECKING:
    from wpprotect._contract import Component, ExecResult, Platform
    from wpprotect.tc._report import TCReport

__all__ = [
    "EMBEDDED_PYTHON",
    "WIRE_VERSION",
    "decode_wire",
    "reader_argv",
    "reader_source",
    "remote_measure",
    "remote_scan",
    "report_from_records",
]

#: The agent image's own Python (docs/reference/deployments.md: the agent's embedded runtime).
EMBEDDED_PYTHON = "/opt/datadog-agent/embedded/bin/python3"
#: The version of the reader's output this side understands.
WIRE_VERSION = 1
#: Where the reader runs, in order of preference.
COMPONENTS: tuple[Component, ...] = ("system-probe", "agent")

_SOURCE: list[bytes] = []


def reader_source() -> bytes:
    """The reader script's source, as sent over stdin (read once)."""
    if not _SOURCE:
        _SOURCE.append((Path(__file__).with_name("_remote_reader.py")).read_bytes())
    return _SOURCE[0]


def reader_argv(
    netns: str | None = "all", *, measure: float = 0.0, python: str = EMBEDDED_PYTHON
) -> list[str]:
    """The argv that runs the reader (its source comes on stdin).

    :param netns: ``"all"``, ``None`` (the reader's own namespace), a name or a path.
    :param measure: a measurement window in seconds (0: a scan).
    :param python: the interpreter inside the container.
    """
    options: dict[str, Any] = {"netns": netns}
    if measure:
        options["measure"] = measure
    # -I: ignore PYTHON* variables and user site-packages of the container; -B: write no .pyc
    # (the agent's containers may have a read-only root file system; nothing is written).
    return [python, "-I", "-B", "-", json.dumps(options, separators=(",", ":"))]


def decode_wire(stdout: str, *, target: str = "") -> dict[str, Any]:
    """The reader's records from its one line of output.

    :raises CapabilityError: the reader said the container lacks a capability.
    :raises TCError: the output is not the reader's, is of another wire version, or is corrupt.
    """
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith("{")), "")
    try:
        outer = json.loads(line)
    except ValueError:
        raise TCError(
            f"the kernel reader's output is not its wire format: {stdout[:200]!r}", target=target
        ) from None
    if not isinstance(outer, dict) or outer.get("wire") != WIRE_VERSION:
        version = outer.get("wire") if isinstance(outer, dict) else None
        raise TCError(f"unknown kernel reader wire version {version!r}", target=target)
    error = outer.get("error")
    if isinstance(error, dict):
        message = str(error.get("message") or "the kernel reader failed")
        if error.get("kind") == "capability":
            raise CapabilityError(
                f"{message}; the container running the reader is missing it", target=target
            )
        raise TCError(f"the kernel reader failed: {message}", target=target)
    try:
        body = json.loads(zlib.decompress(base64.b64decode(str(outer["zlib"]))))
    except (KeyError, ValueError, zlib.error, binascii.Error) as exc:
        raise TCError(f"the kernel reader's records are corrupt: {exc}", target=target) from exc
    if not isinstance(body, dict):
        raise TCError("the kernel reader's records are not an object", target=target)
    return body


def _prog_fields(value: object) -> _bpfsys.ProgFields | int | None:
    if value is None or isinstance(value, int):
        return value
    return _bpfsys.decode_prog_info(base64.b64decode(str(value)))


def _raw_namespaces(
    scan: Mapping[str, Any], *, stats: bool = False
) -> tuple[list[_RawNetns | str], dict[str, dict[int, _netlink.LinkStats]], dict[int, int | None]]:
    """Replay one recorded scan: per namespace its raw read (or a warning), the link counters
    (when recorded), and every program's run count."""
    progs_raw = scan.get("progs") or {}
    progs = {int(k): _prog_fields(v) for k, v in progs_raw.items()}
    raws: list[_RawNetns | str] = [str(w) for w in scan.get("warnings") or []]
    counters: dict[str, dict[int, _netlink.LinkStats]] = {}
    cache: dict[int, _bpfsys.ProgFields | None] = {}
    for ns in scan.get("namespaces") or []:
        dev, _, ino = str(ns["id"]).partition(":")
        ref = _netns.NetnsRef(str(ns["label"]), str(ns["path"]), int(dev), int(ino))
        filters: dict[tuple[int, int], bytes | int] = {
            (int(i), int(p)): blob if isinstance(blob, int) else base64.b64decode(blob)
            for i, p, blob in ns.get("filters") or []
        }
        reader = _netlink.RecordedReader(
            base64.b64decode(ns.get("qdiscs") or ""),
            base64.b64decode(ns.get("links") or ""),
            filters,
            interrupted=bool(ns.get("interrupted")),
        )
        hooks: dict[tuple[int, int], _bpfsys.QueryTuple | int] = {}
        for ifindex, attach_type, result in ns.get("hooks") or []:
            hooks[(int(ifindex), int(attach_type))] = (
                result
                if isinstance(result, int)
                else (tuple(result[0]), tuple(result[1]), int(result[2]), int(result[3]))
            )
        recorded = RecordedNetns(reader, hooks, progs)
        try:
            raws.append(read_netns(ref, recorded=recorded, info_cache=cache))
        except TCError as exc:
            raws.append(f"{ref.label}: could not be read ({exc}); skipped")
            continue
        if stats:
            counters[ref.id] = reader.link_stats()
    runs = {pid: (None if isinstance(f, int) or f is None else f[5]) for pid, f in progs.items()}
    return raws, counters, runs


def report_from_records(
    scan: Mapping[str, Any], *, classifier_priority: int | None = None, target: str = ""
) -> TCReport:
    """The :class:`~wpprotect.tc.TCReport` of one recorded scan, decoded and built exactly as
    a local scan's."""
    try:
        raws, _, _ = _raw_namespaces(scan)
        inspector = TCInspector(netns="all", classifier_priority=classifier_priority)
        return inspector._report(raws)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise TCError(f"the kernel reader's records are malformed: {exc!r}", target=target) from exc


def _run(
    platform: Platform, argv: list[str], *, timeout: float | None, components: Sequence[Component]
) -> tuple[ExecResult, Component]:
    """Run the reader in the first component that exists; name what is missing otherwise."""
    missing: list[str] = []
    for component in components:
        try:
            result = platform.exec(
                argv, component=component, stdin=reader_source(), timeout=timeout
            )
        except AgentNotFoundError as exc:
            missing.append(f"{component}: {exc}")
            continue
        except ExecError as exc:
            # A real kubelet reports an executable it cannot find as a failed exec status
            # ("OCI runtime exec failed: ... no such file or directory"), not as an exit code.
            if type(exc) is ExecError and _not_found(str(exc)):
                raise _no_python(argv[0], component, platform.target) from exc
            raise
        if result.exit_code in (126, 127) or (
            result.exit_code != 0 and not result.stdout.strip() and _not_found(result.stderr)
        ):
            raise _no_python(argv[0], component, platform.target)
        return result, component
    raise AgentNotFoundError(
        "no container to run the kernel reader in (system-probe absent, agent absent): "
        + "; ".join(missing),
        target=platform.target,
    )


def _no_python(python: str, component: str, target: str) -> UnsupportedAgentError:
    return UnsupportedAgentError(
        f"no embedded Python at {python} in the {component} container: the kernel reader "
        "needs the agent image's own Python (use the agent's image, or the fallback pod)",
        target=target,
    )


_NOT_FOUND = ("no such file", "not found", "executable file")


def _not_found(text: str) -> bool:
    low = text.lower()
    return any(s in low for s in _NOT_FOUND)


def _body(result: ExecResult, target: str) -> dict[str, Any]:
    if result.exit_code not in (0, 3, 4):
        raise ExecError(
            f"the kernel reader exited {result.exit_code}: "
            f"{(result.stderr or result.stdout).strip()[-300:]}",
            target=target,
        )
    return decode_wire(result.stdout, target=target)


def remote_scan(
    platform: Platform,
    *,
    netns: str | None = "all",
    classifier_priority: int | None = None,
    timeout: float | None = 60.0,
    components: Sequence[Component] = COMPONENTS,
    python: str = EMBEDDED_PYTHON,
) -> tuple[TCReport, dict[str, Any]]:
    """Scan the kernel ``platform``'s agent sees, with the reader run in its container.

    :returns: the report, and what the reader said about where it ran (``python``,
        ``executable``, ``component``).
    :raises UnsupportedAgentError: the container has no embedded Python.
    :raises CapabilityError: the container lacks a capability the read needs.
    :raises AgentNotFoundError: neither ``system-probe`` nor ``agent`` exists there.
    :raises ExecError: the exec failed or was cut off (``ExecTimeoutError`` past ``timeout``).
    :raises TCError: the reader's output is unusable.
    """
    result, component = _run(
        platform, reader_argv(netns, python=python), timeout=timeout, components=components
    )
    body = _body(result, platform.target)
    scan = body.get("scan")
    if not isinstance(scan, dict):
        raise TCError("the kernel reader returned no scan", target=platform.target)
    report = report_from_records(
        scan, classifier_priority=classifier_priority, target=platform.target
    )
    return report, _where(body, component, result)


def _where(body: Mapping[str, Any], component: str, result: ExecResult) -> dict[str, Any]:
    return {
        "component": component,
        "python": body.get("python"),
        "executable": body.get("executable"),
        "duration": result.duration,
        "bytes": len(result.stdout),
    }


def remote_measure(
    platform: Platform,
    seconds: float,
    *,
    netns: str | None = "all",
    timeout: float | None = None,
    components: Sequence[Component] = COMPONENTS,
    python: str = EMBEDDED_PYTHON,
) -> tuple[_measure.TCMeasurement, dict[str, Any]]:
    """:meth:`TCInspector.measure <wpprotect.tc.TCInspector.measure>` with the reader run in
    ``platform``'s agent container; the window runs there, the judgement here.

    :param timeout: seconds for the whole exec (default: the window plus 60 s).
    :raises InvalidArgumentError: ``seconds`` is not positive.
    """
    given: object = seconds
    if isinstance(given, bool) or not isinstance(given, int | float) or not given > 0:
        raise InvalidArgumentError(f"seconds must be positive, got {seconds!r}")
    wait = seconds + 60.0 if timeout is None else timeout
    result, component = _run(
        platform,
        reader_argv(netns, measure=float(seconds), python=python),
        timeout=wait,
        components=components,
    )
    body = _body(result, platform.target)
    recorded = body.get("measure")
    if not isinstance(recorded, dict):
        raise TCError("the kernel reader returned no measurement", target=platform.target)
    try:
        raws, c0, r0 = _raw_namespaces(recorded["before"], stats=True)
        _, c1, r1 = _raw_namespaces(recorded["after"], stats=True)
        report = TCInspector(netns="all")._report(raws)
        measurement = _measure.measure_recorded(
            report,
            (dict(c0), r0),
            (dict(c1), r1),
            float(seconds),
            float(recorded.get("elapsed") or 0.0),
            recorded.get("stats_already_on"),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise TCError(
            f"the kernel reader's records are malformed: {exc!r}", target=platform.target
        ) from exc
    return measurement, _where(body, component, result)
