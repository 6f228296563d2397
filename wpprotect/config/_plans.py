"""Plans that write Workload Protection settings into config files of every kind.

:func:`plan_disable` and :func:`plan_classifier_priority` take a path, find out from its content
what it is (:func:`detect_kind`), and return a :class:`~wpprotect.Plan` of :class:`FileChange`
objects: one per file (two for a host config directory). Nothing is written until
``plan.apply()``; each change is saved atomically with a backup, verified by reading the file
back with a different parser, and can be undone byte for byte.

Platform adapters build on the same pieces: :func:`host_dir_changes` returns the file changes
of a host directory so a restart change can be appended, and :func:`settings_plan` plans any
``{Setting: value}`` mapping.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from wpprotect._args import path_arg
from wpprotect.config._settings import (
    CLASSIFIER_PRIORITY,
    CWS_ENABLED,
    HOST_FILES,
    NETWORK_ENABLED,
    REENABLING_SETTINGS,
    SECURITY_AGENT_YAML,
    SYSTEM_PROBE_YAML,
    Setting,
    SettingValue,
    disable_settings,
    dotted_get,
    fleet_policy_path,
    load_yaml_document,
    parse_agent_value,
    parse_yaml_bytes,
    scope_settings,
    validate_classifier_priority,
    validate_settings,
)
from wpprotect.config._surfaces import (
    _dset,
    edit_daemonset,
    edit_datadogagent,
    edit_helm_values,
    edit_host_file,
    read_daemonset,
    read_datadogagent,
    read_helm_values,
    read_host_file,
)
from wpprotect.errors import (
    ConfigConflictError,
    ConfigFileError,
    ConfigOverriddenError,
    ConfigParseError,
    ConfigStructureError,
    InvalidArgumentError,
    PlanUndoError,
    PlanVerifyError,
    TargetKindError,
)
from wpprotect.plan import Plan, deferred_signals

__all__ = [
    "FileChange",
    "TargetKind",
    "detect_kind",
    "disable_values",
    "host_dir_changes",
    "plan_classifier_priority",
    "plan_disable",
    "settings_plan",
]

log = logging.getLogger(__name__)

_MAX_BYTES = 8 * 1024 * 1024
RESTART_NOTE = (
    "restart the agent for the change to take effect: sudo systemctl restart datadog-agent "
    "(datadog-agent-sysprobe and datadog-agent-security are bound to it)"
)


class TargetKind(enum.Enum):
    """What a plan target is, as :func:`detect_kind` recognises it from content."""

    HOST_DIR = "host-dir"
    """A host config directory holding system-probe.yaml and/or security-agent.yaml."""
    SYSTEM_PROBE_YAML = "system-probe.yaml"
    """A host ``system-probe.yaml``."""
    SECURITY_AGENT_YAML = "security-agent.yaml"
    """A host ``security-agent.yaml``."""
    HELM_VALUES = "helm-values"
    """A values file of the ``datadog`` Helm chart (top-level ``datadog:`` or ``agents:``)."""
    DATADOG_AGENT = "datadogagent"
    """A ``kind: DatadogAgent`` manifest (Datadog Operator)."""
    DAEMONSET = "daemonset"
    """A ``kind: DaemonSet`` manifest (the node agent's)."""


_ACCEPTED = (
    "a host config directory (with system-probe.yaml and/or security-agent.yaml), "
    "system-probe.yaml, security-agent.yaml, a Helm values file (top-level datadog: or "
    "agents:), a DatadogAgent manifest, a DaemonSet manifest"
)

# Top-level keys only one of the two host files has (pkg/config/config_template.yaml renders
# system_probe_config, network_config, service_monitoring_config, ping, traceroute for
# system-probe and compliance_config for security-agent; the rest are system-probe namespaces
# from pkg/config/setup/system_probe.go).
_SYSTEM_PROBE_KEYS = frozenset(
    {
        "system_probe_config",
        "network_config",
        "service_monitoring_config",
        "event_monitoring_config",
        "ping",
        "traceroute",
        "discovery",
        "gpu_monitoring",
        "software_inventory",
        "windows_crash_detection",
        "dynamic_instrumentation",
        "compliance_module",
    }
)
_SECURITY_AGENT_KEYS = frozenset({"compliance_config", "security_agent"})
_COMMENTED_ROOT = re.compile(r"^# ?([a-z_]+):\s*$", re.MULTILINE)


def _host_kind_from_keys(keys: set[str]) -> TargetKind | None:
    sp, sa = keys & _SYSTEM_PROBE_KEYS, keys & _SECURITY_AGENT_KEYS
    if sp and not sa:
        return TargetKind.SYSTEM_PROBE_YAML
    if sa and not sp:
        return TargetKind.SECURITY_AGENT_YAML
    return None


def _host_kind_from_name(path: Path) -> TargetKind | None:
    name = path.name.lower()
    if name.startswith("system-probe"):
        return TargetKind.SYSTEM_PROBE_YAML
    if name.startswith("security-agent"):
        return TargetKind.SECURITY_AGENT_YAML
    return None


def _read(path: Path, *, follow_symlinks: bool) -> Any:
    from wpprotect.config._io import open_config

    return open_config(path, max_bytes=_MAX_BYTES, follow_symlinks=follow_symlinks)


def _safe_document(path: Path, *, follow_symlinks: bool) -> dict[str, Any] | None:
    """A host or manifest file's values, read through the safe open (None when absent)."""
    if not os.path.lexists(path):
        return None
    doc: dict[str, Any] = parse_yaml_bytes(
        _read(path, follow_symlinks=follow_symlinks).data, path=path
    )
    return doc


def detect_kind(path: str | os.PathLike[str], *, follow_symlinks: bool = False) -> TargetKind:
    """Recognise a plan target from its content.

    - a directory holding ``system-probe.yaml`` and/or ``security-agent.yaml``: ``HOST_DIR``;
    - ``kind: DatadogAgent`` / ``kind: DaemonSet``: ``DATADOG_AGENT`` / ``DAEMONSET``;
    - a top-level ``datadog:`` or ``agents:`` mapping: ``HELM_VALUES``;
    - top-level keys only system-probe.yaml has (``system_probe_config``, ``network_config``,
      ``event_monitoring_config``...) or only security-agent.yaml has (``compliance_config``);
      when the live keys do not tell (only ``runtime_security_config``, or an all-comment file
      like the shipped ``.example``), the commented-out root keys, then the file name decide.

    :param path: a file or directory.
    :param follow_symlinks: follow a symlinked file wherever it points (see
        :func:`plan_disable`).
    :returns: the :class:`TargetKind`.
    :raises UnsafePathError: the file is a symlink, owner or file type refused as unsafe.
    :raises ConfigFileError: the path does not exist or cannot be read.
    :raises ConfigParseError: the file is not YAML.
    :raises TargetKindError: none of the kinds above; the message says what was seen.
    :raises InvalidArgumentError: ``path`` is not a path.
    """
    p = path_arg(path, "path")
    if p.is_dir():
        if any(os.path.lexists(p / f) for f in HOST_FILES):
            return TargetKind.HOST_DIR
        try:
            seen = sorted(os.listdir(p))[:8]
        except OSError:
            seen = []
        raise TargetKindError(
            "a directory without system-probe.yaml or security-agent.yaml "
            f"(it holds: {', '.join(seen) or 'nothing'}); accepted: {_ACCEPTED}",
            path=p,
        )
    if not os.path.lexists(p):
        raise ConfigFileError("no such file or directory", path=p)
    data = _read(p, follow_symlinks=follow_symlinks).data
    doc = parse_yaml_bytes(data, path=p)
    kind = doc.get("kind")
    if kind == "DatadogAgent":
        return TargetKind.DATADOG_AGENT
    if kind == "DaemonSet":
        return TargetKind.DAEMONSET
    if isinstance(kind, str) and "apiVersion" in doc:
        raise TargetKindError(
            f"a Kubernetes {kind} manifest; accepted: {_ACCEPTED}", path=p, key="kind"
        )
    if isinstance(doc.get("datadog"), Mapping) or isinstance(doc.get("agents"), Mapping):
        return TargetKind.HELM_VALUES
    keys = {str(k) for k in doc}
    found = _host_kind_from_keys(keys)
    if found is not None:
        return found
    if keys <= {"runtime_security_config"}:
        text = data.decode("utf-8", errors="replace")
        found = _host_kind_from_keys(set(_COMMENTED_ROOT.findall(text)))
        if found is None:
            found = _host_kind_from_name(p)
        if found is not None:
            return found
        what = "an empty YAML file" if not keys else "a file with only runtime_security_config"
        raise TargetKindError(
            f"{what}, which could be system-probe.yaml or security-agent.yaml; name it after "
            f"the file it is, or pass its directory; accepted: {_ACCEPTED}",
            path=p,
        )
    shown = ", ".join(sorted(keys)[:8]) + (", ..." if len(keys) > 8 else "")
    raise TargetKindError(
        f"a YAML mapping with top-level keys {shown}, which is none of the accepted kinds; "
        f"accepted: {_ACCEPTED}",
        path=p,
    )


# --- JSON manifests ----------------------------------------------------------------------------


class _JsonDocument:
    """A JSON manifest (``kubectl get -o json``), edited as a dict and written back as JSON.

    A YAML round trip would turn it into one flow-style YAML line; this keeps it JSON, with the
    file's indentation and key order, so the diff shows only the edited lines.
    """

    def __init__(self, path: Path, text: str) -> None:
        import json

        self.path = path
        self._original = text
        from wpprotect.config._settings import MAX_DEPTH, check_nodes

        error: ConfigParseError | None = None
        try:
            data = json.loads(text)
        except ValueError as exc:
            error = ConfigParseError("not valid JSON", path=path, line=getattr(exc, "lineno", None))
        except RecursionError:
            error = ConfigParseError(f"nested deeper than {MAX_DEPTH} levels", path=path)
        if error is not None:
            raise error
        check_nodes(data, path=path)
        if not isinstance(data, dict):
            raise ConfigStructureError(
                f"the document's root is a {type(data).__name__}, not an object", path=path
            )
        self.data: dict[str, Any] = data
        from wpprotect._redact import secret_values

        self._original_secrets = secret_values(data)
        m = re.search(r"^\{\s*\n([ \t]+)\S", text)
        self._indent: str | None = m.group(1) if m else None
        self._newline = text.endswith("\n")

    def set(self, dotted: str, value: Any) -> None:
        """Set ``a.b.c``, creating missing parents (the :class:`EditableDocument` protocol)."""
        _dset(self.data, dotted, value)

    @property
    def text(self) -> str:
        import json

        body = json.dumps(self.data, indent=self._indent, ensure_ascii=False)
        return body + ("\n" if self._newline else "")

    def diff(self) -> str:
        import difflib

        from wpprotect._redact import redact_text, secret_values

        name = str(self.path).lstrip("/")
        secrets = self._original_secrets | secret_values(self.data)
        return "".join(
            difflib.unified_diff(
                redact_text(self._original, secrets=secrets).splitlines(keepends=True),
                redact_text(self.text, secrets=secrets).splitlines(keepends=True),
                f"a/{name}",
                f"b/{name}",
            )
        )


def _load_editor(path: Path, data: bytes) -> Any:
    """A round-trip editor for the file's bytes: JSON stays JSON, anything else is YAML."""
    from wpprotect.config._editor import ConfigEditor

    if data.lstrip()[:1] == b"{":
        try:
            return _JsonDocument(path, data.decode("utf-8"))
        except (UnicodeDecodeError, ConfigParseError):
            pass  # a YAML flow mapping, not JSON: let the YAML editor have it
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigParseError(
            f"not UTF-8 text: undecodable byte 0x{data[exc.start]:02x}", path=path, line=line
        ) from exc
    return ConfigEditor.from_text(text, path=path)


# --- one file change -------------------------------------------------------------------------

_Edit = Callable[[Any], bool]
_Check = Callable[[Mapping[str, Any]], dict[Setting, Any]]


def _same_value(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


def _describe(settings: Mapping[Setting, SettingValue]) -> str:
    parts = []
    for s, v in settings.items():
        shown = ("true" if v else "false") if isinstance(v, bool) else str(v)
        parts.append(f"{s.name}={shown}")
    return ", ".join(parts)


@attrs.define(eq=False, repr=False)
class FileChange:
    """One file of a plan, edited with :class:`~wpprotect.ConfigEditor`.

    Implements the :class:`~wpprotect.Change` protocol. The edit is computed when the change
    is made, from the file as it was then; :meth:`apply` refuses to write if the file changed
    since (make a new plan), saves atomically with a backup next to the file (kept after
    :meth:`undo` too, as a safety net), and :meth:`undo` puts the original bytes back
    atomically with the original mode and owner.

    The file is always opened relative to its directory with ``O_NOFOLLOW`` and checked on the
    opened descriptor (see :func:`~wpprotect.config.plan_disable` for the symlink rule); writes
    replace the directory entry and never go through a link. :meth:`undo` first checks the
    file is still exactly what :meth:`apply` wrote (same inode, same SHA-256) and refuses
    otherwise, unless ``force=True``, which keeps a backup of what it overwrites.

    Build one with :meth:`for_file`.
    """

    path: Path
    kind: TargetKind
    settings: Mapping[Setting, SettingValue]
    _edit: _Edit
    _check: _Check
    _editor: Any
    _original: bytes
    _stat: os.stat_result
    _diff: str
    _dir_id: tuple[int, int]
    _new: bytes = b""
    _backup: Path | None = None
    _applied: bool = False
    _written: Any = None
    _satisfied_cache: tuple[tuple[int, int, int, int], bool] | None = None

    @classmethod
    def for_file(
        cls,
        path: str | os.PathLike[str],
        kind: TargetKind,
        settings: Mapping[Setting, object],
        *,
        follow_symlinks: bool = False,
    ) -> FileChange:
        """Plan writing ``settings`` into the file at ``path`` of the given kind.

        :param path: the file. A symlink is resolved now: the change edits the file it points
            at, and only if it may be followed (see :func:`~wpprotect.config.plan_disable`).
        :param kind: any :class:`TargetKind` but ``HOST_DIR``.
        :param settings: ``{Setting: value}``.
        :param follow_symlinks: follow a symlink wherever it points.
        :raises UnsafePathError: a symlink, owner or file type refused as unsafe.
        :raises ConfigError: the file cannot be read, parsed or edited.
        :raises InvalidArgumentError: a setting cannot live in that kind of file.
        """
        from wpprotect._redact import redact_text

        values = validate_settings(settings)
        edit, check = _edit_and_check(kind, values)
        opened = _read(path_arg(path, "path"), follow_symlinks=follow_symlinks)
        p = opened.path
        editor = _load_editor(p, opened.data)
        changed = edit(editor)
        # the editor's diff is redacted from the document's structure; this second pass only
        # masks what a line alone shows (it no longer guesses env pairs from line order)
        diff = redact_text(str(editor.diff()), secrets=frozenset()) if changed else ""
        change = cls(
            p, kind, values, edit, check, editor, opened.data, opened.stat, diff, opened.dir_id
        )
        # the bytes apply() writes are fixed now: exactly what the diff shows
        change._new = str(editor.text).encode("utf-8") if changed else opened.data
        # the file as planned is known: is_satisfied() needs no re-parse until it changes
        change._satisfied_cache = (_signature(opened.stat), not changed)
        return change

    @property
    def target(self) -> str:
        """The file's path."""
        return str(self.path)

    @property
    def description(self) -> str:
        """One line: what is set, in which file."""
        return f"set {_describe(self.settings)} in {self.path}"

    @property
    def backup(self) -> Path | None:
        """The backup :meth:`apply` made, once applied."""
        return self._backup

    @property
    def applied(self) -> bool:
        """True from the moment :meth:`apply` replaced the file until :meth:`undo` put it
        back (set in the same signal-deferred step as the write itself)."""
        return self._applied

    def diff(self) -> str:
        """The unified diff of the planned edit, secrets redacted ('' when nothing changes).

        It is the diff computed when the change was planned, so it still shows what was
        done after :meth:`apply`.
        """
        return self._diff

    def _current(self) -> Any:
        from wpprotect.config._io import open_config

        return open_config(self.path, max_bytes=_MAX_BYTES, links=False, dir_id=self._dir_id)

    def is_satisfied(self) -> bool:
        """True when editing the file as it is now would change nothing.

        :raises ConfigError: the file cannot be read or parsed now (or is now a symlink).
        """
        opened = self._current()
        sig = _signature(opened.stat)
        if self._satisfied_cache is not None and self._satisfied_cache[0] == sig:
            return self._satisfied_cache[1]
        satisfied = not self._edit(_load_editor(self.path, opened.data))
        self._satisfied_cache = (sig, satisfied)
        return satisfied

    def apply(self) -> None:
        """Save the planned edit atomically, with a backup next to the file.

        :raises ConfigConflictError: the file changed after the plan was made.
        :raises UnsafePathError: the file was replaced by a symlink or something unsafe.
        :raises ConfigFileError: it could not be written (the file is unchanged).
        """
        from wpprotect.config._io import EntryState, replace_entry

        if self._applied:
            return
        opened = self._current()
        current = opened.data
        if current != self._original:
            raise ConfigConflictError(
                "the file changed after the plan was made; make a new plan", path=self.path
            )
        new = self._new
        if new == current:
            return
        st = opened.stat
        expect = EntryState.of(st, hashlib.sha256(current).hexdigest())

        def committed(state: Any, backup: Path | None) -> None:
            self._written = state
            self._backup = backup
            self._applied = True
            self._satisfied_cache = None

        replace_entry(
            self.path.parent,
            self.path.name,
            new,
            mode=stat.S_IMODE(self._stat.st_mode),
            uid=self._stat.st_uid,
            gid=self._stat.st_gid,
            expect=expect,
            dir_id=self._dir_id,
            backup=current,
            guard=deferred_signals(),
            on_commit=committed,
        )
        log.info("wrote %s (backup %s)", self.path, self._backup)

    def verify(self) -> None:
        """Re-read the file with a plain YAML loader and check each setting's value.

        :raises PlanVerifyError: a setting does not read back as planned.
        """
        try:
            data = self._current().data
        except ConfigFileError as exc:
            raise PlanVerifyError(f"cannot read it back: {exc.message}", path=self.path) from exc
        found = self._check(parse_yaml_bytes(data, path=self.path))
        bad = [
            f"{s.name} reads {found.get(s)!r}, planned {v!r}"
            for s, v in self.settings.items()
            if not _same_value(found.get(s), v)
        ]
        if bad:
            raise PlanVerifyError("; ".join(bad), path=self.path)

    def undo(self, *, force: bool = False) -> None:
        """Put the original bytes back atomically, with the original mode and owner.

        The file must still be exactly what :meth:`apply` wrote (same inode and content, read
        through an ``O_NOFOLLOW`` descriptor): an edit made since, or a link put in its place,
        is refused, and nothing is written.

        :param force: overwrite it anyway; what is overwritten (a link: the link itself) is
            kept as a ``.bak`` beside the file.
        :raises PlanUndoError: the change was not applied, or the file is not what apply wrote.
        :raises ConfigFileError: the file could not be written.
        """
        from wpprotect.config._io import replace_entry

        if not self._applied:
            raise PlanUndoError("not applied: nothing to undo", path=self.path)

        def committed(_state: Any, backup: Path | None) -> None:
            self._applied = False
            self._written = None
            self._satisfied_cache = None
            if backup is not None:
                log.warning("undo overwrote a later change of %s, kept as %s", self.path, backup)

        try:
            replace_entry(
                self.path.parent,
                self.path.name,
                self._original,
                mode=stat.S_IMODE(self._stat.st_mode),
                uid=self._stat.st_uid,
                gid=self._stat.st_gid,
                expect=self._written,
                dir_id=self._dir_id,
                force=force,
                guard=deferred_signals(),
                on_commit=committed,
            )
        except ConfigConflictError as exc:
            raise PlanUndoError(f"not undone: {exc.message}", path=self.path) from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: target, kind, description, settings, diff, backup."""
        return {
            "target": self.target,
            "kind": self.kind.value,
            "description": self.description,
            "settings": {s.name: v for s, v in self.settings.items()},
            "diff": self.diff(),
            "backup": None if self._backup is None else str(self._backup),
        }

    def _repr_html_(self) -> str:
        import html

        head = f"<p><b>{html.escape(str(self.path))}</b>: {html.escape(self.description)}</p>"
        return head + (f"<pre>{html.escape(self._diff)}</pre>" if self._diff else "")

    def __repr__(self) -> str:
        state = "applied" if self._applied else "planned"
        return f"<FileChange {self.kind.value} {self.path} {_describe(self.settings)} {state}>"


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _edit_and_check(
    kind: TargetKind, values: Mapping[Setting, SettingValue]
) -> tuple[_Edit, _Check]:
    if kind in (TargetKind.SYSTEM_PROBE_YAML, TargetKind.SECURITY_AGENT_YAML):
        fname = kind.value
        for s in values:
            if fname not in s.files:
                raise InvalidArgumentError(
                    f"{s.name} is read from {' and '.join(s.files)}, not {fname}",
                    key=s.write_key,
                )
        return (
            lambda doc: edit_host_file(doc, fname, values),
            lambda doc: dict(read_host_file(doc, fname)),
        )
    if kind is TargetKind.HELM_VALUES:
        return (lambda doc: edit_helm_values(doc, values), lambda doc: dict(read_helm_values(doc)))
    if kind is TargetKind.DATADOG_AGENT:
        return (
            lambda doc: edit_datadogagent(doc, values),
            lambda doc: dict(read_datadogagent(doc)),
        )
    if kind is TargetKind.DAEMONSET:

        def check(doc: Mapping[str, Any]) -> dict[Setting, Any]:
            # every container that reads a setting must agree; report the first that does not
            out: dict[Setting, Any] = {}
            for per in read_daemonset(doc).values():
                for s, v in per.items():
                    if s in values and (s not in out or _same_value(out[s], values[s])):
                        out[s] = v
            return out

        return (lambda doc: edit_daemonset(doc, values), check)
    raise InvalidArgumentError(f"a {kind.value} is not a single file")


# --- plans -----------------------------------------------------------------------------------


def _host_dir(
    config_dir: Path, values: Mapping[Setting, SettingValue], *, follow_symlinks: bool = False
) -> tuple[list[FileChange], list[str]]:
    changes: list[FileChange] = []
    notes: list[str] = []
    covered: set[Setting] = set()
    for fname in HOST_FILES:
        applicable = {s: v for s, v in values.items() if fname in s.files}
        if not applicable:
            continue
        path = config_dir / fname
        if not os.path.lexists(path):
            # the sysprobe/security units have ConditionPathExists= on their file: with no
            # file that component does not run, so there is nothing to change in it
            notes.append(f"{path} does not exist: skipped (that component does not start)")
            continue
        changes.append(
            FileChange.for_file(
                path, TargetKind(fname), applicable, follow_symlinks=follow_symlinks
            )
        )
        covered.update(applicable)
    missing = [s for s in values if s not in covered]
    if missing:
        raise ConfigFileError(
            f"{' and '.join(missing[0].files)} not found: {missing[0].name} lives there",
            path=config_dir,
        )
    return changes, notes


def host_dir_changes(
    config_dir: str | os.PathLike[str],
    settings: Mapping[Setting, object],
    *,
    follow_symlinks: bool = False,
) -> list[FileChange]:
    """The file changes that write ``settings`` into a host config directory.

    ``system-probe.yaml`` comes first, then ``security-agent.yaml``; a file a setting does not
    live in is left alone (network settings only touch ``system-probe.yaml``), and a missing
    file is skipped. A platform adapter appends its restart change and wraps them in a
    :class:`~wpprotect.Plan`.

    :param config_dir: e.g. ``/etc/datadog-agent``.
    :param settings: ``{Setting: value}``.
    :param follow_symlinks: follow symlinked files wherever they point (see
        :func:`plan_disable`).
    :raises UnsafePathError: a file is a symlink, owner or file type refused as unsafe.
    :raises ConfigFileError: no file for some setting exists, or a file cannot be read.
    :raises ConfigError: a file cannot be parsed or edited.
    """
    return _host_dir(
        Path(config_dir), validate_settings(settings), follow_symlinks=follow_symlinks
    )[0]


_CWS_OFF = (
    "Workload Protection itself is off in this {where}: the {what} takes effect only once "
    "it is turned on"
)


def _cws_off(
    values: Mapping[Setting, SettingValue],
    doc: Any,
    read: Callable[[Mapping[str, Any]], Mapping[Setting, Any]],
    where: str,
    what: str,
) -> list[str]:
    """The note that Workload Protection is already off in ``doc`` (read with ``read``), when
    the plan does not set it itself."""
    if CWS_ENABLED in values or not isinstance(doc, Mapping) or read(doc)[CWS_ENABLED] is not False:
        return []
    return [_CWS_OFF.format(where=where, what=what)]


def _notes_for(
    kind: TargetKind, path: Path, values: Mapping[Setting, SettingValue], docs: Mapping[str, Any]
) -> list[str]:
    """What to do after applying, and what the plan cannot do by itself.

    :param docs: the edited documents, by file name (host) or kind value.
    """
    notes: list[str] = []
    what = " and ".join(s.name for s in values)
    if kind in (TargetKind.HOST_DIR, TargetKind.SYSTEM_PROBE_YAML, TargetKind.SECURITY_AGENT_YAML):
        notes.append(RESTART_NOTE)
        if kind is not TargetKind.HOST_DIR and CWS_ENABLED in values:
            other = (
                SECURITY_AGENT_YAML if kind is TargetKind.SYSTEM_PROBE_YAML else SYSTEM_PROBE_YAML
            )
            notes.append(
                f"the docs set runtime_security_config.enabled in both system-probe.yaml and "
                f"security-agent.yaml: plan {other} too, or pass the directory"
            )
        sp = docs.get(SYSTEM_PROBE_YAML)
        if isinstance(sp, Mapping):
            for s in (NETWORK_ENABLED, CLASSIFIER_PRIORITY):
                if s in values and dotted_get(sp, s.write_key) is not None:
                    notes.append(
                        f"{s.write_key} is the key the docs name and the one the agent reads "
                        "first (before env vars); the agent logs it as deprecated in favour of "
                        f"{s.env_key}"
                    )
            if CWS_ENABLED not in values and not read_host_file(sp, SYSTEM_PROBE_YAML)[CWS_ENABLED]:
                notes.append(_CWS_OFF.format(where="system-probe.yaml", what=what))
    elif kind is TargetKind.HELM_VALUES:
        doc = docs.get(kind.value)
        notes.append(
            f"wpprotect does not run helm: apply with `helm upgrade <release> datadog/datadog "
            f"-f {path}` (your release name and chart version)"
        )
        if CLASSIFIER_PRIORITY in values:
            notes.append(
                "the chart has no values key for the classifier priority: it is set as "
                f"{CLASSIFIER_PRIORITY.write_env} in agents.containers.systemProbe.env"
            )
        notes += _cws_off(values, doc, read_helm_values, "values file", what)
    elif kind is TargetKind.DATADOG_AGENT:
        doc = docs.get(kind.value)
        notes.append(f"apply with `kubectl apply -f {path}`; the Operator rolls the DaemonSet")
        if values.get(NETWORK_ENABLED) is False:
            notes.append(
                "the Operator never writes a 'false' env var, so network detection is also "
                f'turned off with {NETWORK_ENABLED.write_env}="false" in '
                "spec.override.nodeAgent.containers.system-probe.env"
            )
        if CLASSIFIER_PRIORITY in values:
            notes.append(
                "the DatadogAgent CRD has no classifier priority field: it is set in "
                "spec.override.nodeAgent.containers.system-probe.env"
            )
        notes += _cws_off(values, doc, read_datadogagent, "DatadogAgent", what)
    elif kind is TargetKind.DAEMONSET:
        doc = docs.get(kind.value)
        notes.append(f"apply with `kubectl apply -f {path}`; the pods restart as it rolls out")
        manager = dotted_get(doc, "metadata.labels") or {}
        manager = (
            manager.get("app.kubernetes.io/managed-by") if isinstance(manager, Mapping) else None
        )
        if manager in ("Helm", "datadog-operator"):
            source = "Helm values" if manager == "Helm" else "DatadogAgent"
            notes.append(
                f"this DaemonSet is managed by {manager}: the next upgrade or reconcile will "
                f"overwrite it; plan the change on the {source} instead"
            )
        volumes = dotted_get(doc, "spec.template.spec.volumes")
        if NETWORK_ENABLED in values and "system-probe-config" in str(volumes):
            # docs/reference/deployments.md#deploy-helm-configmap: the chart's ConfigMap
            # <fullname>-system-probe-config writes
            # runtime_security_config.network.enabled, the deprecated key the getter reads first
            notes.append(
                "system-probe mounts a Helm-rendered system-probe.yaml that sets "
                "runtime_security_config.network.enabled; by the agent's reading order that "
                "YAML key wins over the env var: change datadog.securityAgent.runtime.network."
                "enabled in the Helm values instead"
            )
    return notes


def settings_plan(
    target: str | os.PathLike[str],
    settings: Mapping[Setting, object],
    *,
    title: str | None = None,
    follow_symlinks: bool = False,
) -> Plan:
    """Plan writing ``settings`` into ``target``, whatever kind it is (see :func:`detect_kind`).

    :param target: a host config directory, a host YAML file, a Helm values file, a
        DatadogAgent or a DaemonSet manifest.
    :param settings: ``{Setting: value}`` (e.g. ``{NETWORK_ENABLED: False}``).
    :param title: the plan's title; a description of the settings and target by default.
    :param follow_symlinks: follow symlinked files wherever they point (see
        :func:`plan_disable`).
    :returns: a :class:`~wpprotect.Plan` of :class:`FileChange` objects, with notes on what to
        do after applying it.
    :raises TargetKindError: the target is none of the accepted kinds.
    :raises InvalidArgumentError: a value is invalid, or cannot live in that kind of target.
    :raises ConfigError: a file cannot be read, parsed or edited.
    """
    path = path_arg(target, "target")
    values = validate_settings(settings)
    kind = detect_kind(path, follow_symlinks=follow_symlinks)
    notes: list[str] = []
    if kind is TargetKind.HOST_DIR:
        changes, notes = _host_dir(path, values, follow_symlinks=follow_symlinks)
        docs = {c.path.name: c._editor.data for c in changes}
    else:
        change = FileChange.for_file(path, kind, values, follow_symlinks=follow_symlinks)
        changes = [change]
        docs = {kind.value: change._editor.data}
    notes += _notes_for(kind, path, values, docs)
    # Plan's attrs converters (list) are opaque to mypy's attrs plugin, hence the ignore.
    return Plan(
        title or f"set {_describe(values)} in {path} ({kind.value})",
        changes,
        notes,
    )


_REENABLE_WHY = {
    "fim_enabled": "keeps the event monitor, and Workload Protection with it, running",
    "host_dump_enabled": "makes system-probe set runtime_security_config.enabled back to true",
}


def _fleet_check(system_probe: Mapping[str, Any] | None, where: Path) -> list[str]:
    """Refuse when the fleet policy layer keeps Workload Protection on; notes otherwise.

    :raises ConfigOverriddenError: the fleet policy file sets ``runtime_security_config.enabled``,
        ``fim_enabled`` or ``security_profile.v2.host_dump.enabled`` to true.
    """
    fleet = fleet_policy_path(system_probe)
    if fleet is None:
        return []
    doc = load_yaml_document(fleet)
    if doc is None:
        return [
            f"fleet_policies_dir is set: a policy written later to {fleet} is merged on top of "
            f"{where} (and of the env vars) and can turn Workload Protection back on"
        ]
    for setting in (CWS_ENABLED, *REENABLING_SETTINGS):
        raw = dotted_get(doc, setting.env_key)
        if raw is not None and parse_agent_value(setting, raw)[0] is True:
            raise ConfigOverriddenError(
                f"the fleet policy file sets {setting.env_key}: true, and system-probe merges it "
                f"on top of {where} and the env vars, so disabling Workload Protection locally "
                "would have no effect; change or remove that policy (it is managed remotely, "
                "not by this plan), then plan again",
                path=fleet,
                key=setting.env_key,
            )
    return [f"the fleet policy {fleet} (merged on top of {where}) does not turn it back on"]


def disable_values(
    target: str | os.PathLike[str],
    scope: str = "workload-protection",
    *,
    follow_symlinks: bool = False,
) -> tuple[dict[Setting, SettingValue], list[str]]:
    """What :func:`plan_disable` writes into ``target``, with notes on what it found.

    For ``"workload-protection"`` the target is read for the settings that would keep it on
    (:data:`~wpprotect.config.REENABLING_SETTINGS`): each one not known to be off is turned off
    in the same plan. On a host (a directory or ``system-probe.yaml``) the fleet policy file
    that ``fleet_policies_dir`` names is read too: it is merged on top of the local file, so a
    policy that keeps Workload Protection on makes the plan refuse.

    :param target: any target :func:`plan_disable` accepts.
    :param scope: ``"workload-protection"`` or ``"network"``.
    :param follow_symlinks: follow symlinked files wherever they point (see
        :func:`plan_disable`); by default each file is read through the same safe open as the
        plan's (no symlink followed out of a directory others can write to, owner checked).
    :returns: ``({Setting: value}, notes)``.
    :raises InvalidArgumentError: unknown scope, or ``target`` is not a path.
    :raises UnsafePathError: a file is a refused symlink, owner or file type.
    :raises ConfigOverriddenError: a fleet policy keeps Workload Protection on.
    :raises TargetKindError: the target is none of the accepted kinds.
    :raises ConfigError: a file cannot be read or parsed.
    """
    path = path_arg(target, "target")
    values = scope_settings(scope)
    if scope != "workload-protection":
        return values, []
    kind = detect_kind(path, follow_symlinks=follow_symlinks)
    notes: list[str] = []
    current: dict[Setting, SettingValue | None] = {s: s.default for s in REENABLING_SETTINGS}
    where = path
    if kind in (TargetKind.HOST_DIR, TargetKind.SYSTEM_PROBE_YAML):
        sp_path = path / SYSTEM_PROBE_YAML if kind is TargetKind.HOST_DIR else path
        doc = _safe_document(sp_path, follow_symlinks=follow_symlinks)
        if doc is not None:
            notes += _fleet_check(doc, sp_path)
            current.update(read_host_file(doc, SYSTEM_PROBE_YAML))
        where = sp_path
    elif kind is TargetKind.SECURITY_AGENT_YAML:
        notes.append(
            "runtime_security_config.fim_enabled and security_profile.v2.host_dump.enabled live "
            "in system-probe.yaml, where either keeps Workload Protection on: plan "
            "system-probe.yaml too, or pass the directory"
        )
    else:
        doc = _safe_document(path, follow_symlinks=follow_symlinks) or {}
        if kind is TargetKind.HELM_VALUES:
            current.update(read_helm_values(doc))
        elif kind is TargetKind.DATADOG_AGENT:
            current.update(read_datadogagent(doc))
        else:  # a DaemonSet: what its system-probe container gets
            current.update(read_daemonset(doc).get("system-probe", {}))
    values = disable_settings(scope, {s: current[s] for s in REENABLING_SETTINGS})
    for setting in REENABLING_SETTINGS:
        if setting not in values:
            continue
        state = "is true" if current[setting] is True else "comes from a value not shown here"
        notes.append(
            f"{setting.write_key} {state} in {where}: it {_REENABLE_WHY[setting.name]} even with "
            "runtime_security_config.enabled false, so this plan turns it off too"
        )
    return values, notes


def plan_disable(
    target: str | os.PathLike[str],
    scope: str = "workload-protection",
    *,
    follow_symlinks: bool = False,
) -> Plan:
    """Plan turning Workload Protection, or only its network detection, off in ``target``.

    - ``scope="workload-protection"``: ``runtime_security_config.enabled: false`` (both host
      files of a directory), ``datadog.securityAgent.runtime.enabled: false`` (Helm),
      ``spec.features.cws.enabled: false`` (DatadogAgent), or
      ``DD_RUNTIME_SECURITY_CONFIG_ENABLED="false"`` on system-probe and security-agent
      (DaemonSet). Settings that would keep it running anyway
      (``runtime_security_config.fim_enabled``,
      ``runtime_security_config.security_profile.v2.host_dump.enabled``) are turned off in the
      same plan when the target has them on, each change in the diff and named in the notes;
      a fleet policy file that keeps it on makes the plan refuse (see :func:`disable_values`).
    - ``scope="network"``: ``runtime_security_config.network.enabled: false`` in
      system-probe.yaml, ``datadog.securityAgent.runtime.network.enabled: false`` (Helm),
      ``spec.features.cws.network.enabled: false`` plus a system-probe env override
      (DatadogAgent), or ``DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED="false"`` on system-probe.

    >>> import pathlib, shutil, tempfile
    >>> from wpprotect.config import plan_disable
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> conf = tmp / "system-probe.yaml"
    >>> _ = conf.write_text("runtime_security_config:\\n  enabled: true  # on\\n")
    >>> plan = plan_disable(conf, scope="workload-protection")
    >>> print(plan.diff())  # doctest: +ELLIPSIS
    --- ...
    +++ ...
    @@ -1,2 +1,2 @@
     runtime_security_config:
    -  enabled: true  # on
    +  enabled: false  # on
    <BLANKLINE>
    >>> plan.apply().state
    'applied'
    >>> conf.read_text()
    'runtime_security_config:\\n  enabled: false  # on\\n'
    >>> plan_disable(conf).is_satisfied()
    True
    >>> shutil.rmtree(tmp)

    :param target: a host config directory, system-probe.yaml, security-agent.yaml, a Helm
        values file, a DatadogAgent or a DaemonSet manifest (recognised from content).
    :param scope: ``"workload-protection"`` or ``"network"``.
    :param follow_symlinks: follow a symlinked config file wherever it points. By default a
        file is opened relative to its directory with ``O_NOFOLLOW``; a symlink is followed
        only when the directory is writable by root alone and the link names a file in the
        same directory. Pass True only for a layout nobody but root can write to.
    :returns: the :class:`~wpprotect.Plan`; nothing is written until ``apply()``.
    :raises InvalidArgumentError: unknown scope (the message lists the valid ones), or a scope
        the target cannot carry (network on security-agent.yaml).
    :raises ConfigOverriddenError: a fleet policy file (``fleet_policies_dir``) sets
        Workload Protection, ``fim_enabled`` or ``host_dump.enabled`` on: a local change would
        be overridden; the message names the file and the key.
    :raises TargetKindError: the target is none of the accepted kinds.
    :raises UnsafePathError: a file is a refused symlink, is owned by someone other than root,
        the agent's user (``dd-agent``) or the caller, or is not a regular file.
    :raises ConfigError: a file cannot be read, parsed or edited.
    """
    # Every file is read through the safe open (symlinks, owner, file type), once here and once
    # by the plan's own changes.
    path = path_arg(target, "target")
    values, notes = disable_values(path, scope, follow_symlinks=follow_symlinks)
    plan = settings_plan(
        path, values, title=f"disable {scope} in {path}", follow_symlinks=follow_symlinks
    )
    return Plan(plan.title, list(plan.changes), [*notes, *plan.notes])


def plan_classifier_priority(
    target: str | os.PathLike[str], n: int, *, follow_symlinks: bool = False
) -> Plan:
    """Plan setting the TC priority of Workload Protection's network classifiers to ``n``.

    Pick ``n`` strictly lower than the priority of any vendor classifier that would otherwise
    run first (see ``TCReport.assess``). Written as
    ``runtime_security_config.network.classifier_priority`` in system-probe.yaml (an
    ``event_monitoring_config.network.classifier_priority`` already there is updated too, so
    whichever the agent reads holds ``n``); as a system-probe env entry with Helm and the
    Operator, which have no key for it; as an env var on the DaemonSet's system-probe.

    :param target: any target :func:`plan_disable` accepts.
    :param n: 1..65535.
    :param follow_symlinks: follow symlinked files wherever they point (see
        :func:`plan_disable`).
    :returns: the :class:`~wpprotect.Plan`.
    :raises InvalidArgumentError: ``n`` is not an int in 1..65535 (0 means "the kernel picks").
    :raises TargetKindError: the target is none of the accepted kinds.
    :raises ConfigError: a file cannot be read, parsed or edited.
    """
    path = path_arg(target, "target")
    n = validate_classifier_priority(n)
    return settings_plan(
        path,
        {CLASSIFIER_PRIORITY: n},
        title=f"set classifier priority {n} in {path}",
        follow_symlinks=follow_symlinks,
    )
