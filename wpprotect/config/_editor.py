"""Round-trip YAML editing that changes only the lines an edit needs.

How an edit reaches the text
----------------------------
The document is parsed with ruamel.yaml's round-trip loader into :attr:`ConfigEditor.data`.
ruamel's dumper does not reproduce every file byte for byte (``key: null`` becomes ``key:``,
extra spaces after a colon are dropped, indentation is normalised), so the text is never taken
from the dumper wholesale. Instead, :attr:`ConfigEditor.text` is a three-way merge: ruamel's dump
of the document as it was parsed (*base*) is diffed against the dump of the edited document, and
only the changed hunks are carried over onto the real text, anchored on lines that the base dump
and the real text share. Lines an edit does not touch are therefore byte-for-byte the original.
The merged text must read back as the edited document. That is shown locally when it can be: the
changed lines lie within a few entries of some block mapping; those entries' merged lines, read
alone, must give their new values, every other value must be as parsed, and the other lines are
the original's. Otherwise the whole merged text is parsed again. If it ever did not read back,
the full dump is used instead (correct, but with a larger diff) and a warning is logged; if even
that does not read back as the edited document, the edit is refused with ``ConfigStructureError``.
This check runs when the text is needed (``text``, ``diff``, ``save``, the end of a ``batch``),
once for all the edits made since the last one, not once per ``set``.
:meth:`ConfigEditor.delete` works on the text directly (the entry's lines are removed, then the
text is parsed again), which keeps the comments around the entry where they were.

The dumper is configured with the file's own mapping indent, sequence indent and dash offset,
detected from the parsed positions, so new lines look like their neighbours.

Commented-out defaults
----------------------
The agent's example files ship every key commented out (``# runtime_security_config:`` then
``  # enabled: false`` under ``## @param`` lines, ``pkg/config/config_template.yaml`` in
DataDog/datadog-agent). When :meth:`ConfigEditor.set` needs a key that is missing but present as a
commented-out line in the right block, those lines are uncommented in place (parents first, at
the indentation of their live siblings or one indent level deeper than their parent), the text
is parsed again, and then the value is set; documentation comments stay where they were. The
activation is only kept if the re-parsed document equals the old one plus the activated keys.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import hashlib
import io
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from wpprotect._args import path_arg, text_arg
from wpprotect._redact import redact_text, secret_values
from wpprotect.config import _io, _settings
from wpprotect.errors import (
    ConfigConflictError,
    ConfigError,
    ConfigFileError,
    ConfigParseError,
    ConfigStructureError,
    InvalidArgumentError,
    UnsafePathError,
)

if TYPE_CHECKING:
    from ruamel.yaml import YAML

__all__ = ["ConfigDocuments", "ConfigEditor", "KeyPath"]

log = logging.getLogger(__name__)

#: A key path: ``"a.b.c"`` or a sequence of keys (for keys that contain dots).
KeyPath = str | Sequence[str]

_MISSING: Any = object()
_BOM = "\ufeff"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# A commented-out `key:` line: `# key: value`, `  # key:`, `#   key: value` (not `## doc`).
_COMMENTED_KEY = re.compile(
    r"^(?P<lead>[ ]*)#(?P<sp>[ ]*)(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\-/]*)[ ]*:"
    r"(?:[ ]+(?P<rest>\S.*?))?[ ]*$"
)
_YAML11_NON_STR = re.compile(
    r"""^(?:
        [yY]|[yY]es|YES|[nN]|[nN]o|NO|[tT]rue|TRUE|[fF]alse|FALSE|[oO]n|ON|[oO]ff|OFF
      | ~|[nN]ull|NULL
      | [-+]?(?:0|[1-9][0-9_]*|0[0-7_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)
      | [-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?
      | [-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)
      | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
      | [-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
      | =|<<
      | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt\s].*)?
    )$""",
    re.VERBOSE,
)
_LIVE_KEY = re.compile(r"^(?P<lead>[ ]*)(?P<key>[^\s#\-][^:#]*?)[ ]*:(?:[ ]|$)")


def _ruamel() -> Any:
    """Import ruamel.yaml lazily (the config package is its only home)."""
    import ruamel.yaml

    return ruamel.yaml


class _Indent:
    """The file's block layout: mapping indent, sequence indent and dash offset."""

    __slots__ = ("mapping", "offset", "sequence")

    def __init__(self, mapping: int = 2, sequence: int | None = None, offset: int | None = None):
        self.mapping = mapping
        self.offset = mapping if offset is None else offset
        self.sequence = self.offset + 2 if sequence is None else sequence

    def __repr__(self) -> str:
        return f"_Indent(mapping={self.mapping}, sequence={self.sequence}, offset={self.offset})"


def _make_yaml(indent: _Indent) -> YAML:
    ry = _ruamel()
    y: YAML = ry.YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 1 << 30  # never fold long scalars
    y.allow_duplicate_keys = False
    seq = max(indent.sequence, indent.offset + 2)
    y.indent(mapping=indent.mapping, sequence=seq, offset=indent.offset)
    return y


def _split_path(path: KeyPath) -> tuple[str, ...]:
    keys: tuple[Any, ...]
    if isinstance(path, str):
        keys = tuple(path.split("."))
    elif isinstance(path, Sequence):
        keys = tuple(path)
    else:
        raise InvalidArgumentError(
            f"a key path is a dotted string or a sequence of keys, not {type(path).__name__}"
        )
    if not keys or any(not isinstance(k, str) or k == "" for k in keys):
        raise InvalidArgumentError(f"invalid key path {path!r}: empty key or non-string key")
    return keys


def _dotted(keys: Sequence[str]) -> str:
    return ".".join(keys)


def _plain(node: Any, memo: dict[int, Any] | None = None) -> Any:
    """ruamel's round-trip objects as plain Python values (dict, list, str, int...).

    A node reached through several aliases is converted once; its copies share the result
    (callers that change a result copy the part they change).
    """
    if isinstance(node, Mapping | list | tuple):
        memo = {} if memo is None else memo
        done = memo.get(id(node))
        if done is not None:
            return done
        if isinstance(node, Mapping):
            out: Any = {_plain(k, memo): _plain(v, memo) for k, v in node.items()}
        else:
            out = [_plain(v, memo) for v in node]
        memo[id(node)] = out
        return out
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    tag = getattr(node, "tag", None)
    if tag is not None and hasattr(node, "value"):  # ruamel's TaggedScalar (`!!str 1`, `!foo x`)
        return ("!tagged", str(getattr(tag, "value", tag)), _plain(node.value))
    return node


def _shallow(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _line_of(node: Any, key: Any = None) -> int | None:
    """1-based line of ``node`` (or of ``key`` in it), from ruamel's position info."""
    try:
        lc: Any = node.lc
        if key is not None:
            if isinstance(node, list):
                return int(lc.item(key)[0]) + 1
            return int(lc.key(key)[0]) + 1
        return int(lc.line) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return None


# The local check (ConfigEditor._proved_locally) reads parts of a document alone; these make a
# part read differently in place: anchors and aliases, directives, and line breaks other than LF.
_ANCHOR_OR_ALIAS = re.compile(r"(?:^|[\s\[{,])[&*][^\s\[\]{},]", re.MULTILINE)
_COMMENT_LINE = re.compile(r"^[ ]*#.*$", re.MULTILINE)
_DIRECTIVE = re.compile(r"^%", re.MULTILINE)


def _locally_checkable(body: str, lines: list[str]) -> bool:
    """Whether the local check may be used on edits of ``body`` (split into ``lines``)."""
    if len(lines) != body.count("\n") or _DIRECTIVE.search(body):
        return False
    return _ANCHOR_OR_ALIAS.search(_COMMENT_LINE.sub("", body)) is None


class _Run:
    """Consecutive entries ``keys[first..last]`` of a block mapping of the base text: base lines
    ``start`` (the first key's line) to ``end`` (excluded), keys at column ``col``."""

    __slots__ = ("col", "depth", "end", "first", "keys", "last", "path", "start")

    def __init__(self, index: _MapIndex, first: int, last: int, start: int, end: int) -> None:
        self.path, self.depth, self.col, self.keys = index.path, index.depth, index.col, index.keys
        self.first, self.last, self.start, self.end = first, last, start, end


class _MapIndex:
    """Where the block mappings of a parsed text are: each one's keys, their lines and column,
    the line its block ends before, and the block mappings under its keys."""

    __slots__ = ("children", "clean", "col", "depth", "end", "keys", "lines", "path")

    def __init__(
        self,
        path: tuple[Any, ...],
        *,
        depth: int,
        col: int,
        keys: list[Any],
        lines: list[int],
        clean: list[bool],
        end: int,
    ) -> None:
        self.path, self.depth, self.col = path, depth, col
        self.keys, self.lines, self.clean, self.end = keys, lines, clean, end
        self.children: dict[Any, _MapIndex] = {}

    @classmethod
    def build(cls, node: Any, lines: list[str], path: tuple[Any, ...] = ()) -> _MapIndex | None:
        """Index ``node`` (as parsed from ``lines``) and the block mappings below it."""
        ry = _ruamel()
        if (
            len(path) > 200
            or not isinstance(node, ry.comments.CommentedMap)
            or not node
            or node.fa.flow_style()
        ):
            return None
        keys: list[Any] = []
        at: list[int] = []
        clean: list[bool] = []
        col = -1
        for k in node:
            try:
                kline, kcol = (int(x) for x in node.lc.key(k))
            except (KeyError, TypeError, AttributeError, ValueError):
                return None
            if col < 0:
                col = kcol
            if kcol != col or (at and kline <= at[-1]) or not 0 <= kline < len(lines):
                return None
            keys.append(k)
            at.append(kline)
            # A run may start here only if the line is the key alone at its column (not
            # `- key:`, `? key`, or a key on its parent's line).
            text = lines[kline]
            clean.append(text[:col] == " " * col and text[col : col + 1] not in _NOT_A_KEY)
        index = cls(
            path,
            depth=len(path),
            col=col,
            keys=keys,
            lines=at,
            clean=clean,
            end=_block_end(lines, at[-1], col),
        )
        for k in keys:
            child = cls.build(node[k], lines, (*path, k))
            if child is not None:
                index.children[k] = child
        return index

    def run_for(self, lo: int, hi: int, max_depth: int) -> _Run | None:
        """The deepest run of entries (at most ``max_depth`` deep) whose lines hold the base
        lines ``lo`` to ``hi``."""
        best: _Run | None = None
        m: _MapIndex | None = self
        while m is not None and m.depth <= max_depth:
            i = bisect.bisect_right(m.lines, lo) - 1
            j = bisect.bisect_right(m.lines, hi) - 1
            if i < 0 or hi >= m.end:
                break
            if m.clean[i]:
                end = m.lines[j + 1] if j + 1 < len(m.lines) else m.end
                best = _Run(m, i, j, m.lines[i], end)
            if i != j:
                break
            m = m.children.get(m.keys[i])
        return best


_NOT_A_KEY = ("", " ", "\n", "\t", "-", "#", "?")


def _block_end(lines: list[str], last_key: int, col: int) -> int:
    """The line the block of a mapping whose last key is on ``last_key`` ends before: the next
    content line left of ``col``, or at ``col`` and not a ``- `` item of the last key's list."""
    for n in range(last_key + 1, len(lines)):
        text = lines[n]
        stripped = text.lstrip(" ")
        if not stripped.strip() or stripped.startswith("#"):
            continue
        indent = len(text) - len(stripped)
        if indent < col or (
            indent == col and not (stripped.startswith("- ") or stripped.strip() == "-")
        ):
            return n
    return len(lines)


def _dedented(lines: list[str], col: int) -> str | None:
    """``lines`` moved left by ``col`` columns, to be read alone; None if that would change
    them (a content line left of ``col``, a line break other than LF, not a key first)."""
    out: list[str] = []
    pad = " " * col
    for line in lines:
        if not line.endswith("\n"):
            return None
        if line.startswith(pad):
            out.append(line[col:])
            continue
        rest = line.lstrip(" ")
        if rest == "\n":
            out.append(rest)
        elif rest.startswith("#"):
            out.append(rest)  # a comment left of the block: still a comment at column 0
        else:
            return None
    if not out or out[0][:1] in _NOT_A_KEY:
        return None
    return "".join(out)


def _same_outside(
    cur: Any,
    base: Any,
    path: tuple[Any, ...],
    dropped: dict[tuple[Any, ...], tuple[list[Any], list[Any]]],
) -> bool:
    """Whether plain documents ``cur`` and ``base`` agree everywhere but the dropped keys
    (per mapping path: the base's keys, the current keys)."""
    if not isinstance(cur, dict) or not isinstance(base, dict):
        return False
    base_drop, cur_drop = dropped.get(path, ([], []))
    depth = len(path)
    below = {p[depth] for p in dropped if len(p) > depth and p[:depth] == path}
    cur_keys = [k for k in cur if k not in cur_drop]
    if set(cur_keys) != {k for k in base if k not in base_drop}:
        return False
    for k in cur_keys:
        if k in below:
            if not _same_outside(cur[k], base[k], (*path, k), dropped):
                return False
        elif cur[k] != base[k]:
            return False
    return True


class _EditedFile:
    """What an editor of one file shows about it: its path, the text as loaded, the text as it
    would be saved, and whether they differ."""

    _path: Path | None
    _original_text: str
    _loaded_bytes: bytes | None

    @property
    def path(self) -> Path | None:
        """The file read and written (None for an in-memory text)."""
        return self._path

    @property
    def original_text(self) -> str:
        """The text as loaded (or as last saved)."""
        return self._original_text

    @property
    def text(self) -> str:  # pragma: no cover - every editor defines it
        """The text as :meth:`save` would write it."""
        raise NotImplementedError

    @property
    def changed(self) -> bool:
        """Whether :attr:`text` differs from :attr:`original_text`.

        :raises ConfigStructureError: the edits cannot be written (see :attr:`text`).
        """
        return self.text != self._original_text

    def _write(
        self, *, backup: bool, force: bool, follow_symlinks: bool, what: str
    ) -> tuple[Path | None, str, bytes]:
        """Save :attr:`text` to :attr:`path` (see :meth:`ConfigEditor.save`): the backup made,
        the text written and its bytes."""
        if self._path is None:
            raise ConfigFileError(f"{what} has no path to save to (use from_text(text, path=...))")
        new_text = self.text
        backup_path, data = _save_text(
            self._path,
            new_text,
            expected=self._loaded_bytes,
            original_text=self._original_text,
            follow_symlinks=follow_symlinks,
            backup=backup,
            force=force,
            max_bytes=ConfigEditor.MAX_BYTES,
        )
        return backup_path, new_text, data


class ConfigEditor(_EditedFile):
    """Edit a YAML config file the way a careful person would: only the needed lines change.

    Comments, blank lines, key order, quoting, indentation, sequence style, ``---`` markers, the
    line endings (LF or CRLF, not mixed) and the final newline (or its absence) are kept.
    Commented-out defaults (the agent's ``*.yaml.example`` files) are activated in place.

    >>> ed = ConfigEditor.from_text("# CWS\\nruntime_security_config:\\n  enabled: true  # on\\n")
    >>> ed.get("runtime_security_config.enabled")
    True
    >>> ed.set("runtime_security_config.enabled", False)
    >>> print(ed.text, end="")
    # CWS
    runtime_security_config:
      enabled: false  # on
    >>> ed.changed
    True

    Key paths are dotted strings, or a sequence of keys when a key itself contains dots
    (``("metadata", "annotations", "example.com/x")``).

    Rules:

    - Only the lines an edit needs change; the rest of the file is byte-for-byte the same.
      New keys and lists use the file's own mapping indent, sequence indent and dash offset.
    - Booleans are written ``true``/``false``; strings are quoted only when a YAML 1.1 or 1.2
      reader would see another type (``"false"``, ``"10"``, ``"yes"``), in the file's usual
      quote style; an existing value's quote style is kept.
    - Refused (:class:`~wpprotect.ConfigParseError`): not UTF-8, not YAML, duplicate keys, tabs
      in indentation, mixed CRLF/LF line endings, several documents in one file. An empty or
      comment-only file is an empty mapping.
    - :meth:`save` writes atomically beside the file, keeps mode, owner and group, optionally
      backs up first, and refuses to overwrite a file changed on disk since it was loaded.
    - Edits are checked together when the text is next needed (:attr:`text`, :meth:`diff`,
      :meth:`save`, :attr:`changed`, the end of a :meth:`batch`), re-reading only the entries
      they changed where that suffices. An edit that cannot be written without changing other
      values raises :class:`~wpprotect.ConfigStructureError` there, and the edits made since
      the last check are undone (nothing is saved).

    For code building on the editor:

    - :attr:`data`: the parsed root (a ruamel ``CommentedMap``). Nested nodes may be edited in
      place (e.g. appending to a Kubernetes ``env`` list, with :meth:`make_node` and
      :meth:`set_in`); :attr:`text` reflects such edits with the same minimal-diff rule.
      :meth:`set` (when it activates commented-out lines) and :meth:`delete` re-parse the text
      and so replace :attr:`data`: fetch it (or :meth:`get` results) again after them.
    - :attr:`path`, :attr:`original_text`.

    :cvar MAX_BYTES: files larger than this are refused (16 MiB).
    :cvar MAX_ALIAS_EXPANSION: documents whose aliases (``*name``) expand them past this many
        nodes are refused with :class:`~wpprotect.ConfigExpansionError` (100,000).
    """

    MAX_BYTES: ClassVar[int] = 16 * 1024 * 1024
    MAX_ALIAS_EXPANSION: ClassVar[int] = _settings.MAX_ALIAS_EXPANSION

    def __init__(
        self, text: str, *, path: str | os.PathLike[str] | None = None, line_offset: int = 0
    ) -> None:
        """Parse ``text``; prefer :meth:`load` or :meth:`from_text`.

        :param text: the YAML document.
        :param path: where it belongs (used in messages and by :meth:`save`).
        :param line_offset: lines of the file before this document (in messages, line numbers
            are the file's; used by :class:`ConfigDocuments`).
        :raises ConfigParseError: not YAML, tab indentation, duplicate keys, mixed line endings.
        :raises ConfigStructureError: the root is not a mapping.
        """
        text = text_arg(text, "text")
        self._line_offset = line_offset
        self._part_of: ConfigDocuments | None = None
        self._path: Path | None = None if path is None else path_arg(path, "path")
        self._original_text = text
        self._loaded_bytes: bytes | None = None
        self._follow_symlinks = True
        self._in_batch = False
        self._checker_yaml: YAML | None = None
        self._bom = text.startswith(_BOM)
        body = text[1:] if self._bom else text
        self._crlf = self._detect_newlines(body)
        if self._crlf:
            body = body.replace("\r\n", "\n")
        self._final_newline = body.endswith("\n") or body == ""
        if body and not body.endswith("\n"):
            body += "\n"
        self._check_tabs(body)
        self._load_base(body)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_text(cls, text: str, path: str | os.PathLike[str] | None = None) -> ConfigEditor:
        """Edit a document held in memory.

        :param text: the YAML document.
        :param path: where it would be saved (optional; needed by :meth:`save`).
        :returns: an editor.
        :raises ConfigParseError: the text is not YAML wpprotect can edit safely.
        :raises ConfigStructureError: the root is not a mapping.
        """
        return cls(text, path=path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> ConfigEditor:
        """Read and parse a config file.

        :param path: the file.
        :param follow_symlinks: when False, a symlink is refused. When True (the default) the
            link is followed and :meth:`save` replaces the file it points at, keeping the link.
        :returns: an editor.
        :raises ConfigFileError: missing, not a regular file, a refused symlink, larger than
            :attr:`MAX_BYTES`, or unreadable.
        :raises ConfigParseError: not UTF-8, not YAML, tab indentation, duplicate keys.
        :raises ConfigStructureError: the root is not a mapping.
        """
        p = path_arg(path, "path")
        raw, text = _read_text(p, max_bytes=cls.MAX_BYTES, follow_symlinks=follow_symlinks)
        ed = cls(text, path=p)
        ed._loaded_bytes = raw
        ed._follow_symlinks = follow_symlinks
        return ed

    @classmethod
    def load_all(
        cls, path: str | os.PathLike[str], *, follow_symlinks: bool = True
    ) -> ConfigDocuments:
        """Read a file that may hold several ``---``-separated documents.

        :param path: the file.
        :param follow_symlinks: when False, a symlink is refused.
        :returns: a :class:`ConfigDocuments` (one editor per document; one for a plain file).
        :raises ConfigFileError: missing, not a regular file, a refused symlink, too large.
        :raises ConfigParseError: not UTF-8, or a document is not YAML wpprotect can edit.
        :raises ConfigStructureError: a document's root is not a mapping.
        """
        return ConfigDocuments.load(path, follow_symlinks=follow_symlinks)

    # ------------------------------------------------------------------ parsing helpers

    def _ln(self, line: int | None) -> int | None:
        """A line number of this document as a line of its file (documents after the first
        in a multi-document file start further down)."""
        return None if line is None else line + self._line_offset

    def _detect_newlines(self, body: str) -> bool:
        return _uses_crlf(body, self._path, self._line_offset)

    def _check_tabs(self, body: str) -> None:
        for n, line in enumerate(body.split("\n"), 1):
            lead = line[: len(line) - len(line.lstrip(" \t"))]
            if "\t" in lead and line.strip():
                raise ConfigParseError(
                    "tab character in indentation (YAML indents with spaces)",
                    path=self._path,
                    line=self._ln(n),
                )

    def _parse(self, body: str, yaml: YAML | None = None) -> Any:
        y = yaml if yaml is not None else _make_yaml(_Indent())
        # The ConfigParseError is raised outside the `except` block, so it carries no
        # __cause__ or __context__: the parser's own error quotes the offending line, which may
        # hold a secret (`token: abc: <secret>`), and tracebacks and notebooks show a chain whole.
        try:
            parsed = self._parse_raw(y, body)
            error = None
        except RecursionError:
            error = ConfigParseError(
                f"nested deeper than {_settings.MAX_DEPTH} levels", path=self._path
            )
        except Exception as exc:  # translated (or re-raised) by _parse_error
            error = self._parse_error(exc, body)
        if error is not None:
            raise error
        _settings.check_nodes(parsed, path=self._path, max_nodes=self.MAX_ALIAS_EXPANSION)
        return parsed

    def _parse_error(self, exc: Exception, body: str) -> ConfigParseError:
        """The ConfigParseError for a parser error (its text redacted, its position kept)."""
        ry = _ruamel()
        if isinstance(exc, ConfigParseError):
            return exc
        if isinstance(exc, ry.constructor.DuplicateKeyError):
            mark = exc.problem_mark
            line = None if mark is None else mark.line + 1
            key = None
            if line is not None:
                m = _LIVE_KEY.match(body.split("\n")[line - 1].lstrip(" -"))
                key = None if m is None else m["key"].strip("\"' ")
            return ConfigParseError("duplicate key", path=self._path, line=self._ln(line), key=key)
        if isinstance(exc, ry.composer.ComposerError):
            mark = exc.problem_mark
            msg = (
                "several YAML documents in one file: use ConfigEditor.load_all"
                if "single document" in f"{exc.context} {exc.problem}"
                else f"not valid YAML: {redact_text(str(exc.problem))}"
            )
            return ConfigParseError(
                msg, path=self._path, line=None if mark is None else self._ln(mark.line + 1)
            )
        if isinstance(exc, ry.error.MarkedYAMLError):
            mark = exc.problem_mark or exc.context_mark
            problem = redact_text(str(exc.problem or exc.context or "syntax error"))
            return ConfigParseError(
                f"not valid YAML: {problem}",
                path=self._path,
                line=None if mark is None else self._ln(mark.line + 1),
            )
        if isinstance(exc, ry.reader.ReaderError):  # control characters and the like
            pos = exc.position if isinstance(exc.position, int) else 0
            return ConfigParseError(
                f"not valid YAML: unacceptable character #x{int(exc.character):04x}",
                path=self._path,
                line=self._ln(body.count("\n", 0, pos) + 1),
            )
        if isinstance(exc, ry.error.YAMLError):
            return ConfigParseError("not valid YAML", path=self._path)
        raise exc

    def _parse_raw(self, y: YAML, body: str) -> Any:
        ry = _ruamel()
        try:
            return y.load(body)
        except ry.error.YAMLError:
            raise
        except (ValueError, IndexError, TypeError, KeyError, AttributeError) as exc:
            # ruamel.yaml itself fails on a few odd plain scalars (e.g. `-_`, `._`): report the
            # document as unreadable rather than leak the backend's exception.
            name = type(exc).__name__
        raise ConfigParseError(f"ruamel.yaml cannot read this document ({name})", path=self._path)

    def _load_base(self, body: str, parsed: Any = _MISSING) -> None:
        """Make ``body`` (LF, final newline) the new base text and parse it (``parsed``: its
        parse, when the caller has just made it)."""
        probe = self._parse(body) if parsed is _MISSING else parsed
        ry = _ruamel()
        if probe is None:
            root: Any = ry.comments.CommentedMap()
            self._empty_root = True
        elif isinstance(probe, ry.comments.CommentedMap):
            root = probe
            self._empty_root = False
        else:
            kind = "a list" if isinstance(probe, list) else f"a scalar ({type(probe).__name__})"
            raise ConfigStructureError(
                f"the document's root must be a mapping, not {kind}",
                path=self._path,
                line=self._ln(1),
            )
        self._indent = self._detect_indent(root, body.split("\n"))
        self._yaml = _make_yaml(self._indent)
        self._base = body
        self._data = root
        # The secret values of the text as loaded: redacted on both sides of every diff.
        self._base_secrets = secret_values(root)
        # Dumped now, before any edit: the merge's reference for "unchanged".
        self._base_dump = self._dump(root)
        self._render_cache: tuple[str, str] | None = None
        self._anchor: dict[int, int] | None = None
        self._base_parents: list[tuple[str, ...]] | None = None
        self._quote = self._detect_quote(root)
        # The last text known to be writable, and the edits made since (checked when the text
        # is next rendered; undone if it cannot be written).
        self._rendered = body
        self._pending: list[str] = []
        # What the local check (_proved_locally) needs from the text as parsed, taken before
        # any edit: where each block mapping's keys are, and the parsed values.
        self._orig_lines = body.splitlines(True)
        self._index: _MapIndex | None = None
        self._base_plain: Any = None
        if _locally_checkable(body, self._orig_lines) and not self._empty_root:
            self._index = _MapIndex.build(root, self._orig_lines)
            self._base_plain = _plain(root)

    def _detect_indent(self, root: Any, lines: list[str]) -> _Indent:
        ry = _ruamel()
        maps: Counter[int] = Counter()
        seqs: Counter[tuple[int, int]] = Counter()
        seen: set[int] = set()  # a node reached again through an alias is laid out once

        def walk(node: Any, depth: int) -> None:
            if depth > 200 or id(node) in seen:
                return
            seen.add(id(node))
            if isinstance(node, ry.comments.CommentedMap):
                for k, v in node.items():
                    try:
                        kline, kcol = node.lc.key(k)
                    except (KeyError, TypeError, AttributeError):
                        continue
                    if isinstance(v, ry.comments.CommentedMap) and v and not v.fa.flow_style():
                        if v.lc.line > kline:
                            maps[v.lc.col - kcol] += 1
                    elif isinstance(v, ry.comments.CommentedSeq) and v and not v.fa.flow_style():
                        try:
                            iline, icol = v.lc.item(0)
                        except (KeyError, TypeError, AttributeError, IndexError):
                            iline = -1
                        if 0 <= iline < len(lines) and iline > kline:
                            text = lines[iline]
                            dash = text.rfind("-", 0, icol)
                            if dash >= 0 and text[dash + 1 : icol].strip() == "":
                                seqs[(icol - kcol, dash - kcol)] += 1
                    walk(v, depth + 1)
            elif isinstance(node, ry.comments.CommentedSeq):
                for v in node:
                    walk(v, depth + 1)

        walk(root, 0)
        mapping = maps.most_common(1)[0][0] if maps else 2
        if mapping <= 0:
            mapping = 2
        if seqs:
            (sequence, offset), _n = seqs.most_common(1)[0]
            if offset < 0 or sequence < offset + 2:
                return _Indent(mapping)
            return _Indent(mapping, sequence, offset)
        return _Indent(mapping)

    def _detect_quote(self, root: Any) -> str:
        ry = _ruamel()
        dq = sq = 0
        stack = [root]
        seen = 0
        while stack and seen < 100_000:
            node = stack.pop()
            seen += 1
            if isinstance(node, Mapping):
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, ry.scalarstring.DoubleQuotedScalarString):
                dq += 1
            elif isinstance(node, ry.scalarstring.SingleQuotedScalarString):
                sq += 1
        return "'" if sq > dq else '"'

    # ------------------------------------------------------------------ public properties

    @property
    def data(self) -> Any:
        """The document's root, a ruamel ``CommentedMap`` (see the class docstring)."""
        return self._data

    @property
    def text(self) -> str:
        """The document as :meth:`save` would write it.

        :raises ConfigStructureError: the edits cannot be written without changing other values.
            If :meth:`set` or :meth:`delete` was called since the last check, everything since
            is undone; in-place edits of :attr:`data` alone are not.
        """
        return self._finish(self._render_body())

    def __repr__(self) -> str:
        # Never any content: values may be secrets. Never raises.
        where = str(self._path) if self._path else None
        try:
            # Never undoes edits either (a failed check is left for text, diff and save).
            changed: object = self._finish(self._render_body(undo=False)) != self._original_text
        except ConfigError:
            changed = "?"
        return f"<ConfigEditor path={where!r} changed={changed}>"

    # ------------------------------------------------------------------ rendering

    def _dump(self, data: Any) -> str:
        if self._empty_root and not data:
            return ""
        ry = _ruamel()
        buf = io.StringIO()
        try:
            self._yaml.dump(data, buf)
        except ry.representer.RepresenterError as exc:  # an object put into `data` by hand
            self._yaml = _make_yaml(self._indent)  # a failed dump leaves the dumper unusable
            raise ConfigStructureError(
                "the document holds a value YAML cannot represent", path=self._path
            ) from exc
        return buf.getvalue()

    def _render_body(self, *, undo: bool = True) -> str:
        """The body as it would be written: the merge of the edits, checked.

        :param undo: when the check fails after :meth:`set` or :meth:`delete` calls that were
            not yet checked, go back to the last text that was (and say so in the error).
        :raises ConfigStructureError: the document cannot be written as it is.
        """
        try:
            new = self._dump(self._data)
            if new == self._base_dump:
                body = self._base
            elif self._render_cache is not None and self._render_cache[0] == new:
                body = self._render_cache[1]
            else:
                body = self._merge_body(new)
                self._render_cache = (new, body)
        except ConfigStructureError as exc:
            if not undo or not self._pending:
                raise
            edits = ", ".join(self._pending)
            self._restore(self._rendered)
            raise ConfigStructureError(
                f"{exc.message}; undone: {edits}", path=self._path, line=exc.line, key=exc.key
            ) from exc
        self._rendered = body
        self._pending.clear()
        return body

    def _merge_body(self, new: str) -> str:
        if self._empty_root:
            merged = self._base + new
        else:
            orig = self._orig_lines
            base = self._base_dump.splitlines(True)
            if self._anchor is None:  # these depend on the base only: computed once per base
                self._anchor = _anchors(base, orig)
                self._base_parents = _with_parents(base)
            lines, changes = _merge(
                orig, base, new.splitlines(True), self._anchor, self._base_parents
            )
            merged = "".join(lines)
            if self._proved_locally(lines, changes):
                return merged
        if self._same_document(merged):
            return merged
        if not self._same_document(new):
            raise ConfigStructureError(
                "this edit cannot be written without changing other values", path=self._path
            )
        log.warning(
            "%s: minimal-diff merge did not reproduce the document; writing ruamel's full dump",
            self._path or "<text>",
        )
        return new

    def _same_document(self, text: str) -> bool:
        try:
            again = self._parse(text)
        except Exception:  # any failure means "not the same"
            return False
        if again is None:
            again = {}
        return bool(_plain(again) == _plain(self._data))

    def _proved_locally(self, merged: list[str], changes: _Changes) -> bool:
        """Whether ``merged`` (the real text with ``changes``) reads as :attr:`data`, proved by
        parsing only the changed entries.

        Each change is covered by a run of consecutive entries of a block mapping of the base
        text, as deep as works. The merged lines of each run, taken out and dedented, must
        parse to those entries' current values; every value outside the runs must equal its
        value as parsed; the text outside the runs is the base text, unchanged. Then the whole
        merged text reads as :attr:`data`. Whatever this cannot show (anchors and aliases,
        directives, a run that does not read alone) is left to the full check.
        """
        if self._index is None or not changes:
            return False
        clusters: list[tuple[int, int, int]] = []  # base lines to cover, and how deep a run may be
        at = 0
        for start, end, _count in changes:
            if start < at or end < start:
                return False
            at = end
            line = start if start < end else start - 1  # an insertion: the line before it
            if line < 0:
                return False
            clusters.append((line, end - 1 if start < end else line, 1 << 30))
        for _ in range(8 * len(clusters) + 64):
            covered = self._cover(self._index, clusters)
            if covered is None:
                return False
            failed = self._runs_read_back(merged, changes, [run for run, _c in covered])
            if failed is None:
                return True
            if failed < 0:
                return False
            run, (lo, hi, _depth) = covered[failed]
            if run.depth == 0:
                return False
            # Try the run one level up (new keys added after a nested block, say).
            clusters = [c for _r, c in covered]
            clusters[failed] = (lo, hi, run.depth - 1)
        return False

    @staticmethod
    def _cover(
        index: _MapIndex, clusters: list[tuple[int, int, int]]
    ) -> list[tuple[_Run, tuple[int, int, int]]] | None:
        """A run for each cluster (base lines ``lo..hi``, at most ``depth`` deep), clusters
        whose runs overlap being joined until none do."""
        while True:
            found: list[tuple[_Run, tuple[int, int, int]]] = []
            for lo, hi, depth in clusters:
                run = index.run_for(lo, hi, depth)
                if run is None:
                    return None
                found.append((run, (lo, hi, depth)))
            found.sort(key=lambda f: f[0].start)
            joined: list[tuple[_Run, tuple[int, int, int]]] = []
            for run, (lo, hi, depth) in found:
                if joined and run.start < joined[-1][0].end:
                    prev, (plo, phi, pdepth) = joined[-1]
                    # The joined cluster needs a run at (or above) the shallower of the two.
                    cluster = (
                        min(plo, lo),
                        max(phi, hi),
                        min(pdepth, depth, prev.depth, run.depth),
                    )
                    outer = prev if prev.end >= run.end else run
                    joined[-1] = (outer, cluster)
                else:
                    joined.append((run, (lo, hi, depth)))
            if len(joined) == len(found):
                return joined
            clusters = [c for _r, c in joined]

    def _runs_read_back(self, merged: list[str], changes: _Changes, runs: list[_Run]) -> int | None:
        """Check each run (see :meth:`_proved_locally`).

        :returns: None when all read back and nothing else changed; else the index of a run
            that does not read alone, or -1 when the rest of the document does not match.
        """
        ends: list[int] = []
        shift = [0]  # merged position of base line x: x + the shift of the changes ending by x
        for start, end, count in changes:
            ends.append(end)
            shift.append(shift[-1] + count - (end - start))

        def pos(x: int) -> int:
            return x + shift[bisect.bisect_right(ends, x)]

        y = self._checker()
        got: list[Any] = []
        for n, run in enumerate(runs):
            text = _dedented(merged[pos(run.start) : pos(run.end)], run.col)
            if text is None:
                return n
            try:
                parsed = self._parse_raw(y, text)
            except Exception:  # does not read alone: a wider run may
                return n
            if not isinstance(parsed, Mapping):
                return n
            got.append(parsed)
        # Per mapping, its current keys must be the base's outside the runs and, in each run's
        # place, the keys the run read as; and those must hold the current values.
        groups: dict[tuple[Any, ...], list[int]] = {}
        for n, run in enumerate(runs):  # in text order
            groups.setdefault(run.path, []).append(n)
        dropped: dict[tuple[Any, ...], tuple[list[Any], list[Any]]] = {}
        for path, members in groups.items():
            current: Any = self._data
            for k in path:
                current = current.get(k) if isinstance(current, Mapping) else None
            if not isinstance(current, Mapping):
                return members[0]
            keys = list(current.keys())
            base = runs[members[0]].keys
            at = 0  # in keys
            after = 0  # in base: the end of the previous run
            base_keys, cur_keys = dropped.setdefault(tuple(_plain(k) for k in path), ([], []))
            for m in members:
                r = runs[m]
                between = r.first - after
                if keys[at : at + between] != base[after : r.first]:
                    return m
                at += between
                inside = keys[at : at + len(got[m])]
                if [_plain(k) for k in got[m]] != [_plain(k) for k in inside]:
                    return m
                if any(_plain(got[m][k]) != _plain(current[k]) for k in inside):
                    return m
                at += len(inside)
                after = r.last + 1
                base_keys.extend(_plain(k) for k in base[r.first : after])
                cur_keys.extend(_plain(k) for k in inside)
            if keys[at:] != base[after:]:
                return members[-1]
        if not _same_outside(_plain(self._data), self._base_plain, (), dropped):
            return -1
        return None

    def _checker(self) -> YAML:
        """The parser of the local check (made once per editor)."""
        if self._checker_yaml is None:
            self._checker_yaml = _make_yaml(_Indent())
        return self._checker_yaml

    def _finish(self, body: str) -> str:
        if not self._final_newline and body.endswith("\n"):
            body = body[:-1]
        if self._crlf:
            body = body.replace("\n", "\r\n")
        return (_BOM if self._bom else "") + body

    # ------------------------------------------------------------------ navigation

    def _walk(self, keys: Sequence[str], *, for_write: bool) -> tuple[Any, int]:
        """Follow the parents of ``keys`` from the root as far as they exist as mappings.

        :returns: ``(node, i)``: the mapping reached through ``keys[:i]``. ``i`` is
            ``len(keys) - 1`` when every parent exists (the leaf itself may be absent);
            otherwise ``keys[i]`` is missing from ``node`` or null there.
        :raises ConfigStructureError: a parent on the way holds a scalar or a list.
        """
        ry = _ruamel()
        node = self._data
        for i, k in enumerate(keys[:-1]):
            if k not in node or node[k] is None:
                return node, i
            child = node[k]
            if not isinstance(child, ry.comments.CommentedMap):
                kind = "a list" if isinstance(child, list) else "a scalar"
                what = "set" if for_write else "read"
                raise ConfigStructureError(
                    f"cannot {what} {_dotted(keys)!r}: {_dotted(keys[: i + 1])!r} is {kind},"
                    " not a mapping",
                    path=self._path,
                    line=self._ln(_line_of(node, k)),
                    key=_dotted(keys),
                )
            node = child
        return node, len(keys) - 1

    def get(self, path: KeyPath, default: Any = None) -> Any:
        """The value at ``path``, or ``default`` when it or a parent is missing (or a parent is
        null). A key that is present with a null value gives ``None``.

        Scalars are returned as plain Python values (``bool``, ``int``, ``float``, ``str``,
        ``None``); mappings and lists as the live ruamel nodes (edits to them show in
        :attr:`text`).

        :param path: ``"a.b.c"`` or a sequence of keys.
        :param default: returned when the key is absent.
        :returns: the value.
        :raises ConfigStructureError: a key on the way holds a scalar or a list.
        """
        keys = _split_path(path)
        node, depth = self._walk(keys, for_write=False)
        if depth < len(keys) - 1 or keys[-1] not in node:
            return default
        value = node[keys[-1]]
        if isinstance(value, Mapping | list):
            return value
        if getattr(value, "tag", None) is not None and hasattr(value, "value"):
            return _plain(value.value)  # a tagged scalar (`!!str 1`, `!secret x`): its text
        return _plain(value)

    def __contains__(self, path: object) -> bool:
        """``"a.b" in ed``: whether the key exists (even with a null value)."""
        if not isinstance(path, str | tuple | list):
            return False
        return self.get(path, _MISSING) is not _MISSING

    # ------------------------------------------------------------------ set

    def set(self, path: KeyPath, value: Any) -> None:
        """Set ``path`` to ``value``, creating missing parents.

        An existing scalar is replaced in place (its line, inline comment and quoting style
        kept). A missing key that exists as a commented-out line in the right block is
        uncommented there (with its commented-out parents); otherwise it is added after the
        last entry of its parent mapping, before any comments that trail that entry.

        Values: ``bool`` (written ``true``/``false``), ``int``, ``float``, ``str`` (quoted only
        when YAML would otherwise read another type, e.g. ``"false"``), ``None``, and lists
        and dicts of these.

        The path and the value are checked at once; if they are refused, nothing changed.
        Whether the result can be written without changing other lines is checked when the
        text is next needed (:attr:`text`, :meth:`diff`, :meth:`save`, :attr:`changed`, the end
        of a :meth:`batch`), once for all the edits made since: if it cannot, that raises
        :class:`~wpprotect.ConfigStructureError` naming them, and they are undone.

        :param path: ``"a.b.c"`` or a sequence of keys.
        :param value: the new value.
        :raises ConfigStructureError: a key on the way holds a scalar or a list (or, when a
            commented-out line is activated, earlier edits cannot be written).
        :raises InvalidArgumentError: the path or the value's type is not supported.
        """
        keys = _split_path(path)
        self._to_node(value, keys, None)  # refuse a bad value before anything changes
        self._walk(keys, for_write=True)  # likewise a path through a scalar or a list
        self._set(keys, value)
        self._pending.append(f"set {_dotted(keys)!r}")

    @contextlib.contextmanager
    def batch(self) -> Iterator[ConfigEditor]:
        """Make several edits as one: all-or-nothing, and checked when the block ends.

        If anything in the block raises, or the edits together cannot be written without
        changing other values, every edit made in it is undone (edits made before the block
        are checked when it starts).

        >>> ed = ConfigEditor.from_text("a: 1\\nb: 2\\n")
        >>> with ed.batch():
        ...     ed.set("a", 10)
        ...     _ = ed.delete("b")
        >>> print(ed.text, end="")
        a: 10

        :returns: a context manager yielding this editor.
        :raises ConfigStructureError: the edits together cannot be written without changing
            other values (they are undone).
        """
        if self._in_batch:  # nested: the outer batch checks and undoes
            yield self
            return
        before = self._render_body()
        self._in_batch = True
        try:
            yield self
            self._in_batch = False
            self._render_body(undo=False)
        except BaseException:
            self._in_batch = False
            self._restore(before)
            raise

    def _restore(self, body: str, parsed: Any = _MISSING) -> None:
        """Go back to (or on to) a text known to be right, keeping the loaded text."""
        saved = (self._original_text, self._final_newline)
        self._load_base(body, parsed)
        self._original_text, self._final_newline = saved

    def _set(self, keys: Sequence[str], value: Any) -> None:
        ry = _ruamel()
        node, depth = self._walk(keys, for_write=True)
        if depth < len(keys) - 1 or keys[-1] not in node:
            # Keys that exist live (a null parent counts) need no activation.
            live = depth + 1 if depth < len(keys) - 1 and keys[depth] in node else depth
            if self._activate(keys, live):
                node, depth = self._walk(keys, for_write=True)
        if not node and node.fa.flow_style():
            node.fa.set_block_style()  # `env: {}` gets a block, like its neighbours
        # Turn null parents into mappings; build missing ones whole, then add them in one go
        # (so comments trailing the old last entry move below the complete new block).
        while depth < len(keys) - 1:
            k = keys[depth]
            if k not in node:
                leaf = self._to_node(value, keys, None)
                for kk in reversed(keys[depth + 1 :]):
                    m = ry.comments.CommentedMap()
                    m[kk] = leaf
                    leaf = m
                self._append_key(node, k, leaf)
                return
            node[k] = ry.comments.CommentedMap()  # was null: its comments stay attached
            node = node[k]
            depth += 1
        last = keys[-1]
        if last in node:
            old = node[last]
            new = self._to_node(value, keys, old)
            node[last] = new
            self._keep_comment_gap(node, last, old, new)
        else:
            self._append_key(node, last, self._to_node(value, keys, None))

    def make_node(self, value: Any) -> Any:
        """Convert a Python value into what :meth:`set` would store (ruamel nodes, strings
        quoted when YAML would read another type), for code that edits :attr:`data` in place.

        >>> ed = ConfigEditor.from_text('env:\\n  - name: A\\n    value: "1"\\n')
        >>> ed.get("env").append(ed.make_node({"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED",
        ...                                    "value": "false"}))
        >>> print(ed.text, end="")
        env:
          - name: A
            value: "1"
          - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED
            value: "false"

        :param value: ``None``, ``bool``, ``int``, ``float``, ``str``, or lists and dicts of them.
        :returns: the node.
        :raises InvalidArgumentError: a type YAML cannot hold.
        """
        return self._to_node(value, ("<value>",), None)

    def set_in(self, node: Any, key: str | int, value: Any) -> None:
        """Set ``node[key]`` inside :attr:`data` with :meth:`set`'s rules (quoting kept, end-of-line
        comment kept in place). For a list, ``key`` is an index; ``len(node)`` appends.

        :param node: a mapping or list taken from :attr:`data` (e.g. with :meth:`get`).
        :param key: a key of the mapping, or an index of the list.
        :param value: the new value.
        :raises InvalidArgumentError: ``node`` is not a mapping or list, or the index is out of
            range.
        """
        ry = _ruamel()
        if isinstance(node, ry.comments.CommentedSeq) and isinstance(key, int):
            if key == len(node):
                node.append(self._to_node(value, (str(key),), None))
                return
            if not -len(node) <= key < len(node):
                raise InvalidArgumentError(f"list index {key} out of range (0..{len(node)})")
            node[key] = self._to_node(value, (str(key),), node[key])
            return
        if isinstance(node, ry.comments.CommentedMap) and isinstance(key, str):
            if key in node:
                old = node[key]
                new = self._to_node(value, (key,), old)
                node[key] = new
                self._keep_comment_gap(node, key, old, new)
            else:
                self._append_key(node, key, self._to_node(value, (key,), None))
            return
        raise InvalidArgumentError(
            f"set_in needs a mapping with a str key or a list with an int index, not"
            f" {type(node).__name__}[{type(key).__name__}]"
        )

    def _keep_comment_gap(self, node: Any, key: str, old: Any, new: Any) -> None:
        """Keep the spaces between a replaced scalar and its end-of-line comment.

        ruamel re-emits the comment at its old column, so a longer value would squeeze it
        (``enabled: true  # on`` -> ``enabled: false # on``).
        """
        ry = _ruamel()
        if isinstance(old, Mapping | list) or isinstance(new, Mapping | list):
            return
        entry = node.ca.items.get(key)
        tok = entry[2] if entry and len(entry) > 2 else None
        if tok is None or str(tok.value).startswith("\n") or tok.start_mark is None:
            return
        try:
            kline = int(node.lc.key(key)[0])
            vline, vcol = (int(x) for x in node.lc.value(key))
        except (KeyError, TypeError, AttributeError):
            return
        lines = self._base.split("\n")
        if not 0 <= kline < len(lines):
            return
        line = lines[kline]
        old_col = int(tok.start_mark.column)
        old_end = len(line[:old_col].rstrip())
        gap = old_col - old_end
        if gap < 1:
            return
        if old is None and line[:old_end].endswith(":"):
            vcol = old_end + 1  # `key:  # doc` (null): the value goes one space after the colon
        elif vline != kline or old_end <= vcol:
            return
        buf = io.StringIO()
        self._yaml.dump({"k": new}, buf)
        new_text = buf.getvalue()[3:].rstrip("\n")
        if "\n" in new_text or not new_text:
            return
        tok.start_mark = ry.error.CommentMark(vcol + len(new_text) + gap)

    def _to_node(self, value: Any, keys: Sequence[str], old: Any) -> Any:
        ry = _ruamel()
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            ss = ry.scalarstring
            if isinstance(old, ss.DoubleQuotedScalarString):
                return ss.DoubleQuotedScalarString(value)
            if isinstance(old, ss.SingleQuotedScalarString) and "\n" not in value:
                return ss.SingleQuotedScalarString(value)
            if "\n" in value:
                return ss.LiteralScalarString(value)
            if self._needs_quotes(value):
                return (
                    ss.SingleQuotedScalarString(value)
                    if self._quote == "'"
                    else ss.DoubleQuotedScalarString(value)
                )
            return value
        if isinstance(value, Mapping):
            m = ry.comments.CommentedMap()
            for k, v in value.items():
                if not isinstance(k, str):
                    raise InvalidArgumentError(
                        f"mapping keys must be strings, not {type(k).__name__}", key=_dotted(keys)
                    )
                m[k] = self._to_node(v, (*keys, k), None)
            return m
        if isinstance(value, list | tuple):
            s = ry.comments.CommentedSeq()
            for i, v in enumerate(value):
                s.append(self._to_node(v, (*keys, str(i)), None))
            return s
        raise InvalidArgumentError(
            f"cannot write a value of type {type(value).__name__} to YAML", key=_dotted(keys)
        )

    def _needs_quotes(self, value: str) -> bool:
        """Whether a plain scalar would be read back as something other than this string."""
        if value == "" or value != value.strip():
            return True
        if _YAML11_NON_STR.match(value):
            # YAML 1.1 readers (PyYAML; the Go yaml.v2 behind older agents) would not see a
            # string here, e.g. `yes`, `off`, `0755`, `1_000`.
            return True
        ry = _ruamel()
        tag = self._yaml.resolver.resolve(ry.nodes.ScalarNode, value, (True, False))
        return str(tag) != "tag:yaml.org,2002:str"

    def _append_key(self, parent: Any, key: str, value: Any) -> None:
        """Add ``key`` at the end of ``parent``, before the comments trailing its last entry."""
        ry = _ruamel()
        moved = None
        if parent:
            col = getattr(parent.lc, "col", None)
            moved = _detach_trailing(
                parent, list(parent.keys())[-1], column=col if isinstance(col, int) else None
            )
        parent[key] = value
        if moved:
            tok = ry.tokens.CommentToken("\n" + moved, ry.error.CommentMark(0), None)
            _attach_trailing(parent, key, tok)

    # ------------------------------------------------------------------ delete

    def delete(self, path: KeyPath) -> bool:
        """Remove the key at ``path`` (with its value). Comment lines around it are kept.

        The key's lines (its line, its end-of-line comment and its value's lines) are removed
        from the text; comment lines before and after it stay. A mapping left empty is written
        ``{}``. Like :meth:`set`, this may replace :attr:`data`.

        :param path: ``"a.b.c"`` or a sequence of keys.
        :returns: True if something was removed, False if the key was absent.
        :raises ConfigStructureError: a key on the way holds a scalar or a list.
        """
        keys = _split_path(path)
        node, depth = self._walk(keys, for_write=True)
        if depth < len(keys) - 1 or keys[-1] not in node:
            return False
        if self._delete_lines(keys):
            return True
        self._delete_node(node, keys[-1])  # checked with the next rendering, like set()
        self._pending.append(f"delete {_dotted(keys)!r}")
        return True

    def _delete_lines(self, keys: Sequence[str]) -> bool:
        """Delete by removing the entry's lines from the text; False if that cannot be done
        cleanly (flow style, first key of a sequence item...), to use :meth:`_delete_node`."""
        body = self._render_body()
        data = self._data if body == self._base else self._parse(body, self._yaml)
        parents = [data]
        for k in keys[:-1]:
            parents.append(parents[-1][k])
        node, key = parents[-1], keys[-1]
        try:
            kline, kcol = (int(x) for x in node.lc.key(key))
        except (KeyError, TypeError, AttributeError):
            return False
        if node.fa.flow_style():
            return False
        lines = body.split("\n")
        last = kline
        for i in range(kline + 1, len(lines)):
            text = lines[i]
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue  # comments after the value stay (unless more value lines follow)
            indent = len(text) - len(text.lstrip(" "))
            if indent > kcol or (indent == kcol and (stripped == "-" or stripped.startswith("- "))):
                last = i
                continue
            break
        kept = lines[:kline] + lines[last + 1 :]
        if len(node) == 1 and len(keys) > 1:
            # The parent mapping becomes empty: `b:  # doc` -> `b: {}  # doc`, not null.
            pline = int(parents[-2].lc.key(keys[-2])[0])
            m = re.match(r"^(.*?):([ \t]*(?:#.*)?)$", lines[pline])
            if m is None:
                return False
            kept[pline] = f"{m[1]}: {{}}{m[2] if m[2].strip() else ''}"
        new_body = "\n".join(kept)
        expected = _plain(self._data)
        target = expected
        for k in keys[:-1]:
            target = target[k]
        del target[key]
        try:
            reparsed = self._parse(new_body)
        except ConfigError:
            return False
        if _plain(reparsed if reparsed is not None else {}) != expected:
            return False
        self._load_base(new_body, reparsed)
        return True

    def _delete_node(self, node: Any, last: str) -> None:
        """Delete through ruamel, moving the comments that trailed the entry to a neighbour."""
        ry = _ruamel()
        order = list(node.keys())
        idx = order.index(last)
        pre = node.ca.items.get(last, [None, None, None, None])[1]
        moved = _detach_trailing(node, last)
        pre_text = "".join(t.value for t in pre) if pre else ""
        keep = pre_text + (moved or "")
        del node[last]
        node.ca.items.pop(last, None)
        if keep:
            if idx > 0:
                prev = order[idx - 1]
                tok = ry.tokens.CommentToken("\n" + keep, ry.error.CommentMark(0), None)
                _attach_trailing(node, prev, tok, append=True)
            elif idx + 1 < len(order):
                nxt = order[idx + 1]
                slot = node.ca.items.setdefault(nxt, [None, None, None, None])
                tok = ry.tokens.CommentToken(keep, ry.error.CommentMark(0), None)
                slot[1] = [tok, *(slot[1] or [])]

    # ------------------------------------------------------------------ commented-out defaults

    def _activate(self, keys: Sequence[str], depth: int) -> bool:
        """Uncomment the commented-out lines for ``keys[depth:]``; True if any were."""
        if not self._may_activate(keys, depth):
            return False
        body = self._render_body()
        lines = body.split("\n")
        # Where the live parent is: its key line and column (root: no line, column -1).
        if depth == 0:
            p_line, p_col, p_virt = -1, -1, -1
        else:
            # Positions come from the parse of the text being edited: the base, unless in-place
            # edits to `data` changed it.
            pm = self._data if body == self._base else self._parse(body, self._yaml)
            for k in keys[: depth - 1]:
                pm = pm[k]
            kl = pm.lc.key(keys[depth - 1])
            p_line, p_col = int(kl[0]), int(kl[1])
            p_virt = p_col
        steps: list[tuple[int, str]] = []  # (line number, new line), parents first
        edits: list[str] = list(lines)
        for d in range(depth, len(keys)):
            found = _find_commented_child(edits, p_line, p_col, p_virt, keys[d])
            if found is None:
                break
            line_no, virt, rest = found
            col = _child_column(edits, p_line, p_col, self._indent.mapping)
            if d < len(keys) - 1:
                edits[line_no] = " " * col + keys[d] + ":"
            else:
                edits[line_no] = " " * col + keys[d] + ":" + (" " + rest if rest else "")
            steps.append((line_no, edits[line_no]))
            p_line, p_col, p_virt = line_no, col, virt
        # Keep the longest prefix of activations that still parses to the old document plus
        # the activated keys (a commented value may not be valid YAML, or the "comment" may be
        # the content of a block scalar).
        while steps:
            trial = list(lines)
            for line_no, new_line in steps:
                trial[line_no] = new_line
            new_body = "\n".join(trial)
            try:
                new_data = self._parse(new_body)
            except Exception:  # not valid here: try one level fewer
                new_data = None
            if new_data is not None and self._activation_is_clean(new_data, keys, depth):
                break
            steps.pop()
        if not steps:
            return False
        log.debug("activated commented-out %s", _dotted(keys[: depth + len(steps)]))
        self._restore(new_body, new_data)
        return True

    def _may_activate(self, keys: Sequence[str], depth: int) -> bool:
        """A cheap first look, on the text as parsed (whose positions ``data`` still holds):
        is ``keys[depth]`` commented out under its parent at all? Saves rendering the whole
        document for every new key (most have no commented-out line)."""
        lines = self._base.split("\n")
        if depth == 0:
            return _find_commented_child(lines, -1, -1, -1, keys[0]) is not None
        node = self._data
        try:
            for k in keys[: depth - 1]:
                node = node[k]
            kline, kcol = (int(x) for x in node.lc.key(keys[depth - 1]))
        except (KeyError, TypeError, AttributeError):
            return False  # a parent added since the parse: its block has no comments yet
        if not 0 <= kline < len(lines) or not lines[kline][kcol:].startswith(keys[depth - 1]):
            return True  # positions do not match the text: let the full procedure decide
        return _find_commented_child(lines, kline, kcol, kcol, keys[depth]) is not None

    def _activation_is_clean(self, new_data: Any, keys: Sequence[str], depth: int) -> bool:
        if not isinstance(new_data, Mapping):
            return False
        old = _plain(self._data)
        new = _plain(new_data)
        o = old
        n = new
        for k in keys[:depth]:
            if not isinstance(n, dict) or k not in n:
                return False
            # copies along the path: an aliased node's plain value is shared with its aliases
            o[k] = {} if o.get(k) is None else _shallow(o[k])
            n[k] = _shallow(n[k])
            o, n = o[k], n[k]
        if not isinstance(n, dict) or keys[depth] not in n:
            return False
        del n[keys[depth]]
        return bool(old == new)

    # ------------------------------------------------------------------ diff and save

    def diff(self, *, context: int = 3) -> str:
        """A unified diff from :attr:`original_text` to :attr:`text`, secrets redacted.

        The diff is computed on the real texts and printed from their redacted versions (each
        side redacted as a whole document, which keeps line numbers), so a changed secret still
        shows as a changed line, without its value.

        :param context: lines of context around each change.
        :returns: the diff ('' when nothing changed).
        :raises ConfigStructureError: as :attr:`text`.
        """
        return _redacted_diff(
            self._original_text, self.text, self._path, context, self._secret_values()
        )

    def _secret_values(self) -> frozenset[str]:
        """The secret values found in the document's structure, as loaded and as edited."""
        return self._base_secrets | secret_values(self._data)

    def save(
        self, *, backup: bool = True, force: bool = False, follow_symlinks: bool = False
    ) -> Path | None:
        """Write :attr:`text` to :attr:`path` atomically (see :mod:`wpprotect.config._io`).

        Mode, owner and group are kept. Nothing is written when nothing changed. A path that is
        a symlink is refused (:class:`~wpprotect.UnsafePathError`) unless ``follow_symlinks``
        is True: then the file it points at is replaced and the link kept.

        :param backup: first copy the current file to ``<name>.wpprotect-<UTC time>.bak``.
        :param force: overwrite even if the file changed on disk since it was loaded.
        :param follow_symlinks: write through a symlink at :attr:`path` (opt-in, for a layout
            only root can write to).
        :returns: the backup's path, or None (no backup asked, nothing to back up, or nothing
            changed).
        :raises ConfigFileError: no path, or the file cannot be written (it is left as it was).
        :raises ConfigConflictError: the file changed on disk since it was loaded (its content
            is compared with what was loaded). The check and the rename are two steps, so a
            writer racing in between is not detected; the backup holds what was checked.
        :raises ConfigStructureError: as :attr:`text` (nothing is written).
        """
        if self._part_of is not None:
            raise ConfigFileError(
                "this document is one of several in its file: save the ConfigDocuments",
                path=self._path,
            )
        backup_path, new_text, data = self._write(
            backup=backup, force=force, follow_symlinks=follow_symlinks, what="this document"
        )
        self._rebase(new_text, data)
        return backup_path

    def _rebase(self, text: str, data: bytes) -> None:
        """After a save, the written text is the new baseline."""
        self._original_text = text
        self._loaded_bytes = data
        self._bom = text.startswith(_BOM)
        body = text[1:] if self._bom else text
        if self._crlf:
            body = body.replace("\r\n", "\n")
        self._final_newline = body.endswith("\n") or body == ""
        if body and not body.endswith("\n"):
            body += "\n"
        self._load_base(body)


def _uses_crlf(body: str, path: Path | None, line_offset: int = 0) -> bool:
    """Whether ``body`` ends its lines with CRLF (True) or LF (False).

    :raises ConfigParseError: a stray CR, or CRLF and LF mixed (they would be rewritten one
        way or the other: refused rather than guessed).
    """
    crlf = body.count("\r\n")
    cr = body.count("\r")
    lf = body.count("\n")
    if cr != crlf:
        stray = re.search(r"\r(?!\n)", body)
        line = body.count("\n", 0, stray.start() if stray else 0) + 1
        raise ConfigParseError(
            "stray carriage return (old Mac line ending)", path=path, line=line + line_offset
        )
    if crlf and crlf != lf:
        lines = body.split("\n")
        first = lines[0].endswith("\r")
        bad = next(i for i, ln in enumerate(lines[:-1]) if ln.endswith("\r") != first)
        raise ConfigParseError(
            "mixed line endings (CRLF and LF)", path=path, line=bad + 1 + line_offset
        )
    return crlf > 0


_DOC_START = re.compile(r"^---(?:[ \t]|$)")


def _split_documents(text: str) -> list[tuple[str, int]]:
    """Split a YAML stream into its documents' texts, each with the line it starts on.

    A ``---`` line at column 0 starts a new document once the current one has content (so
    comments before the first ``---`` stay with the first document); ``%`` directives go with
    the document they precede. Markers at column 0 always end a document in YAML, even inside
    a block scalar, so this split agrees with any YAML parser.
    """
    chunks: list[tuple[list[str], int]] = [([], 0)]
    has_content = False
    directive = False
    for n, line in enumerate(text.splitlines(keepends=True)):
        body = line.rstrip("\r\n")
        starts = _DOC_START.match(body) is not None
        if body.startswith("%") and has_content:
            chunks.append(([], n))
            has_content = False
            directive = True
        elif starts and has_content and not directive:
            chunks.append(([], n))
            has_content = False
        if starts:
            directive = False
            has_content = True  # a marker line is content: the next marker splits
        elif body.strip() and not body.lstrip().startswith("#") and not body.startswith("%"):
            has_content = True
        chunks[-1][0].append(line)
    return [("".join(lines), start) for lines, start in chunks]


class ConfigDocuments(_EditedFile):
    """A file of several YAML documents separated by ``---`` (Kubernetes manifests), each
    edited with its own :class:`ConfigEditor` and saved together, with the same rules.

    >>> docs = ConfigDocuments.from_text("kind: ServiceAccount\\n---\\nkind: DaemonSet\\n")
    >>> [d.get("kind") for d in docs]
    ['ServiceAccount', 'DaemonSet']
    >>> docs[1].set("spec.paused", False)
    >>> print(docs.text, end="")
    kind: ServiceAccount
    ---
    kind: DaemonSet
    spec:
      paused: false

    Use :meth:`save` here: the documents' own ``save()`` refuses, since each holds only a part
    of the file.
    """

    def __init__(self, text: str, *, path: str | os.PathLike[str] | None = None) -> None:
        """Split and parse ``text``; prefer :meth:`load` or :meth:`from_text`.

        :param text: the YAML stream.
        :param path: where it belongs (used in messages and by :meth:`save`).
        :raises ConfigParseError: a document is not YAML wpprotect can edit safely.
        :raises ConfigStructureError: a document's root is not a mapping.
        """
        text = text_arg(text, "text")
        self._path: Path | None = None if path is None else path_arg(path, "path")
        self._original_text = text
        self._loaded_bytes: bytes | None = None
        self._follow_symlinks = True
        # Line endings are a property of the file: checked once, over all documents, and
        # given to each (a last document of one line has none of its own).
        crlf = _uses_crlf(text.removeprefix(_BOM), self._path)
        self._documents = [
            ConfigEditor(chunk, path=self._path, line_offset=start)
            for chunk, start in _split_documents(text)
        ]
        for doc in self._documents:
            doc._part_of = self
            doc._crlf = crlf

    @classmethod
    def from_text(cls, text: str, path: str | os.PathLike[str] | None = None) -> ConfigDocuments:
        """Edit a YAML stream held in memory.

        :param text: the documents.
        :param path: where it would be saved (optional; needed by :meth:`save`).
        :returns: the documents.
        :raises ConfigParseError: a document is not YAML wpprotect can edit safely.
        :raises ConfigStructureError: a document's root is not a mapping.
        """
        return cls(text, path=path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> ConfigDocuments:
        """Read and parse a file of one or more YAML documents (see :meth:`ConfigEditor.load`
        for the file rules).

        :param path: the file.
        :param follow_symlinks: when False, a symlink is refused.
        :returns: the documents.
        :raises ConfigFileError: missing, not a regular file, a refused symlink, too large.
        :raises ConfigParseError: not UTF-8, or a document is not YAML wpprotect can edit.
        :raises ConfigStructureError: a document's root is not a mapping.
        """
        p = path_arg(path, "path")
        raw, text = _read_text(p, max_bytes=ConfigEditor.MAX_BYTES, follow_symlinks=follow_symlinks)
        docs = cls(text, path=p)
        docs._loaded_bytes = raw
        docs._follow_symlinks = follow_symlinks
        return docs

    @property
    def documents(self) -> tuple[ConfigEditor, ...]:
        """The documents, in file order."""
        return tuple(self._documents)

    def __len__(self) -> int:
        return len(self._documents)

    def __iter__(self) -> Iterator[ConfigEditor]:
        return iter(self._documents)

    def __getitem__(self, index: int) -> ConfigEditor:
        return self._documents[index]

    @property
    def text(self) -> str:
        """The whole file as :meth:`save` would write it."""
        return "".join(doc.text for doc in self._documents)

    def diff(self, *, context: int = 3) -> str:
        """A unified diff of the whole file, secrets redacted (see :meth:`ConfigEditor.diff`).

        :param context: lines of context around each change.
        :returns: the diff ('' when nothing changed).
        """
        secrets = frozenset[str]().union(*(doc._secret_values() for doc in self._documents))
        return _redacted_diff(self._original_text, self.text, self._path, context, secrets)

    def save(
        self, *, backup: bool = True, force: bool = False, follow_symlinks: bool = False
    ) -> Path | None:
        """Write every document back to :attr:`path`, atomically, with
        :meth:`ConfigEditor.save`'s rules (backup, mode and owner kept, conflict check, a
        symlink refused unless ``follow_symlinks``).

        :param backup: first copy the current file to ``<name>.wpprotect-<UTC time>.bak``.
        :param force: overwrite even if the file changed on disk since it was loaded.
        :param follow_symlinks: write through a symlink at :attr:`path`.
        :returns: the backup's path, or None.
        :raises ConfigFileError: no path, or the file cannot be written (it is left as it was).
        :raises ConfigConflictError: the file changed on disk since it was loaded.
        """
        backup_path, new_text, data = self._write(
            backup=backup, force=force, follow_symlinks=follow_symlinks, what="these documents"
        )
        self._original_text = new_text
        self._loaded_bytes = data
        for doc in self._documents:
            doc._rebase(doc.text, doc.text.encode("utf-8"))
        return backup_path

    def __repr__(self) -> str:
        where = str(self._path) if self._path else None
        try:
            changed: object = self.changed
        except ConfigError:
            changed = "?"
        return f"<ConfigDocuments path={where!r} documents={len(self)} changed={changed}>"


def _read_text(path: Path, *, max_bytes: int, follow_symlinks: bool) -> tuple[bytes, str]:
    """Read a config file's bytes and decode them as UTF-8."""
    raw, _st = _io.read_regular_file(path, max_bytes=max_bytes, follow_symlinks=follow_symlinks)
    try:
        return raw, raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        hint = " (it looks like UTF-16: save it as UTF-8)" if raw[:2] in _UTF16_BOMS else ""
        raise ConfigParseError(
            f"not UTF-8 text: undecodable byte 0x{raw[exc.start]:02x}{hint}", path=path, line=line
        ) from exc


def _save_text(
    path: Path,
    new_text: str,
    *,
    expected: bytes | None,
    original_text: str,
    follow_symlinks: bool,
    backup: bool,
    force: bool,
    max_bytes: int,
) -> tuple[Path | None, bytes]:
    """The save rule shared by :class:`ConfigEditor` and :class:`ConfigDocuments`: conflict
    check against what was loaded, optional backup, atomic write. :returns: the backup's path
    (or None) and the bytes now on disk."""
    if not follow_symlinks and path.is_symlink():
        raise UnsafePathError(
            "refusing to write through a symlink (pass follow_symlinks=True to save())", path=path
        )
    data = new_text.encode("utf-8")
    current: bytes | None
    try:
        current, _st = _io.read_regular_file(
            path, max_bytes=max(max_bytes, len(data)) * 4, follow_symlinks=follow_symlinks
        )
    except ConfigFileError:
        if path.exists() or path.is_symlink():
            raise
        current = None
    loaded = expected is not None
    if expected is None:
        expected = original_text.encode("utf-8")
    if (
        current is not None
        and hashlib.sha256(current).digest() != hashlib.sha256(expected).digest()
        and not force
    ):
        raise ConfigConflictError(
            "the file changed on disk since it was loaded; reload it or pass force=True",
            path=path,
        )
    if current is None and loaded and not force:
        raise ConfigConflictError(
            "the file was removed since it was loaded; pass force=True to recreate it",
            path=path,
        )
    if current == data:
        return None, data
    backup_path = None
    if backup and current is not None:
        backup_path = _io.backup_file(path, data=current)
    try:
        _io.atomic_write(path, data, follow_symlinks=follow_symlinks)
    except ConfigFileError:
        if backup_path is not None:  # the file is unchanged: its backup is not needed
            backup_path.unlink(missing_ok=True)
        raise
    return backup_path, data


# ---------------------------------------------------------------------- diff


def _redacted_diff(
    before: str, after: str, path: Path | None, context: int, secrets: frozenset[str]
) -> str:
    """The diff :meth:`ConfigEditor.diff` shows: computed on the real texts, printed from their
    redacted versions (redaction keeps line numbers; ``secrets``, the values the documents'
    structure marks as secret, are masked wherever they appear)."""
    name = str(path).lstrip("/") if path else "<text>"
    a_raw = before.splitlines(keepends=True)
    b_raw = after.splitlines(keepends=True)
    groups = _diff_groups(a_raw, b_raw, context)
    if not groups:
        return ""
    a = _redacted_head(a_raw, groups[-1][-1][2], secrets)
    b = _redacted_head(b_raw, groups[-1][-1][4], secrets)
    if a is None or b is None:  # pragma: no cover - redaction keeps lines; if not, diff that
        a = redact_text(before, secrets=secrets).splitlines(keepends=True)
        b = redact_text(after, secrets=secrets).splitlines(keepends=True)
        groups = _diff_groups(a, b, context)
    return _format_diff(groups, a, b, names=(f"a/{name}", f"b/{name}"))


def _redacted_head(lines: list[str], shown: int, secrets: frozenset[str]) -> list[str] | None:
    """The first ``shown`` lines of a text, redacted as in the whole text (None if redaction
    changed their number).

    A line's redaction depends on the lines before it only, so the lines after the diff's last
    hunk need not be read, unless they hold ``@@`` (:func:`redact_text` reads a text with
    ``@@`` hunk lines as a diff).
    """
    rest = "".join(lines[shown:])
    text = "".join(lines[:shown]) + (rest if "@@" in rest else "")
    out = redact_text(text, secrets=secrets).splitlines(keepends=True)
    if len(out) != len(text.splitlines(keepends=True)):
        return None
    return out


_Group = list[tuple[str, int, int, int, int]]


def _diff_groups(a: list[str], b: list[str], context: int) -> list[_Group]:
    """The hunks of a unified diff from ``a`` to ``b`` (``difflib`` grouped opcodes)."""
    # Only the part between the common first and last lines can differ: match that (and the
    # context lines around it), not the whole file.
    head, tail = _common_ends(a, b)
    lo = max(0, head - context)
    cut = max(0, tail - context)
    matcher = difflib.SequenceMatcher(
        None, a[lo : len(a) - cut], b[lo : len(b) - cut], autojunk=False
    )
    return [
        [(t, i1 + lo, i2 + lo, j1 + lo, j2 + lo) for t, i1, i2, j1, j2 in group]
        for group in matcher.get_grouped_opcodes(context)
    ]


def _unified_diff(
    a_raw: list[str],
    b_raw: list[str],
    a_show: list[str],
    b_show: list[str],
    *,
    names: tuple[str, str],
    context: int,
) -> str:
    """A unified diff of ``a_raw`` -> ``b_raw`` whose lines are printed from ``a_show`` and
    ``b_show`` (the same lines, redacted)."""
    return _format_diff(_diff_groups(a_raw, b_raw, context), a_show, b_show, names=names)


def _format_diff(
    groups: list[_Group], a_show: list[str], b_show: list[str], *, names: tuple[str, str]
) -> str:
    """Print the hunks ``groups`` with lines from ``a_show`` and ``b_show``."""

    def rng(start: int, length: int) -> str:
        if length == 1:
            return str(start + 1)
        return f"{start + (1 if length else 0)},{length}"

    def emit(prefix: str, line: str) -> str:
        if line.endswith("\n"):
            return prefix + line
        return prefix + line + "\n\\ No newline at end of file\n"

    out: list[str] = []
    for group in groups:
        if not out:
            out += [f"--- {names[0]}\n", f"+++ {names[1]}\n"]
        first, last = group[0], group[-1]
        out.append(
            f"@@ -{rng(first[1], last[2] - first[1])} +{rng(first[3], last[4] - first[3])} @@\n"
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [emit(" ", ln) for ln in a_show[i1:i2]]
                continue
            out += [emit("-", ln) for ln in a_show[i1:i2]]
            out += [emit("+", ln) for ln in b_show[j1:j2]]
    return "".join(out)


# ---------------------------------------------------------------------- comment surgery


def _trailing_slot(node: Any, key: Any) -> tuple[Any, Any, int] | None:
    """The (comment-attribute, key, index) whose token holds the comments after ``node[key]``.

    ruamel attaches the comment lines that follow an entry to the deepest last leaf of its
    value: slot 2 of a mapping key, slot 0 of a sequence item.
    """
    ry = _ruamel()
    value = node[key]
    if isinstance(value, ry.comments.CommentedMap) and value and not value.fa.flow_style():
        return _trailing_slot(value, list(value.keys())[-1])
    if isinstance(value, ry.comments.CommentedSeq) and value and not value.fa.flow_style():
        last = len(value) - 1
        inner = value[last]
        if (
            isinstance(inner, ry.comments.CommentedMap | ry.comments.CommentedSeq)
            and inner
            and not inner.fa.flow_style()
        ):
            return _trailing_slot(value, last)
        return value.ca, last, 0
    return node.ca, key, 2


def _detach_trailing(node: Any, key: Any, *, column: int | None = None) -> str | None:
    """Cut the full-line comments (and blank lines) that follow ``node[key]``; keep its
    end-of-line comment, and (when ``column`` is given) the comment lines indented deeper than
    ``column`` that directly follow it (they belong to the entry's own block).

    :returns: the cut text (lines with their own indentation) or None."""
    slot = _trailing_slot(node, key)
    if slot is None:
        return None
    ca, k, idx = slot
    entry = ca.items.get(k)
    if not entry or len(entry) <= idx or entry[idx] is None:
        return None
    tok = entry[idx]
    value = str(tok.value)
    if "\n" not in value:
        return None
    eol, rest = value.split("\n", 1)
    if not rest:
        return None
    lines = rest.splitlines(keepends=True)
    cut = 0
    if column is not None:
        cut = len(lines)
        for i, line in enumerate(lines):
            if line.strip() and len(line) - len(line.lstrip(" ")) <= column:
                cut = i
                break
        while cut > 0 and not lines[cut - 1].strip():
            cut -= 1  # blank lines before the next section go with it
    stay, moved = "".join(lines[:cut]), "".join(lines[cut:])
    if not moved:
        return None
    if eol.strip() or stay:
        tok.value = eol + "\n" + stay if stay else eol + "\n"
    else:
        entry[idx] = None
    return moved


def _attach_trailing(node: Any, key: Any, tok: Any, *, append: bool = False) -> None:
    """Put comment token ``tok`` after ``node[key]`` (appending to what is there if asked)."""
    slot = _trailing_slot(node, key)
    if slot is None:  # pragma: no cover - _trailing_slot always answers
        return
    ca, k, idx = slot
    entry = ca.items.setdefault(k, [None, None, None, None])
    while len(entry) <= idx:
        entry.append(None)
    if append and entry[idx] is not None:
        existing = str(entry[idx].value)
        entry[idx].value = (
            existing + str(tok.value)[1:] if existing.endswith("\n") else existing + str(tok.value)
        )
    else:
        entry[idx] = tok


# ---------------------------------------------------------------------- commented lines


def _live_col(line: str) -> int | None:
    s = line.strip()
    if not s or s.startswith("#"):
        return None
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], p_line: int, p_col: int, p_virt: int) -> Iterator[int]:
    """Line numbers of the block under the key at ``p_line`` (column ``p_col``; ``p_virt`` is
    its commented-out column when it was just activated)."""
    for n in range(p_line + 1, len(lines)):
        line = lines[n]
        col = _live_col(line)
        if col is not None and col <= p_col:
            return
        m = _COMMENTED_KEY.match(line)
        if m and col is None and _virt(m) <= p_virt and p_line >= 0:
            return
        yield n


def _virt(m: re.Match[str]) -> int:
    # The column the key would have once uncommented: `# key` and `  # key` put it where the
    # `#` is (`# ` is removed); `#   key` puts it 2 deeper. Only comparisons use this.
    return len(m["lead"]) + 1 + len(m["sp"]) - 2


def _find_commented_child(
    lines: list[str], p_line: int, p_col: int, p_virt: int, key: str
) -> tuple[int, int, str | None] | None:
    """Find ``key`` commented out as a direct child of the key at ``p_line``."""
    candidates: list[tuple[int, int, re.Match[str]]] = []
    live_level: int | None = None
    for n in _block(lines, p_line, p_col, p_virt):
        line = lines[n]
        col = _live_col(line)
        if col is not None:
            if _LIVE_KEY.match(line) and (live_level is None or col < live_level):
                live_level = col
            continue
        m = _COMMENTED_KEY.match(line)
        if m:
            candidates.append((n, _virt(m), m))
    if not candidates:
        return None
    level = min(v for _n, v, _m in candidates)
    if live_level is not None:
        # Commented siblings of live keys sit at the live keys' level; deeper ones are nested
        # under some other key (a live child's commented example, say).
        level = min(level, live_level)
    for n, v, m in candidates:
        # One column of slack: `#  key` and `# key` are the same level to a reader.
        if v <= level + 1 and m["key"] == key:
            return n, v, m["rest"]
    return None


def _child_column(lines: list[str], p_line: int, p_col: int, mapping_indent: int) -> int:
    """Column for a new child of the key at ``p_line``: that of its live children, if any."""
    if p_line < 0:
        for line in lines:
            col = _live_col(line)
            if col is not None and _LIVE_KEY.match(line):
                return col
        return 0
    for n in _block(lines, p_line, p_col, p_col):
        col = _live_col(lines[n])
        if col is not None and _LIVE_KEY.match(lines[n]):
            return col
    return p_col + mapping_indent


# ---------------------------------------------------------------------- three-way merge


_NULL_VALUE = re.compile(r"(:|^-+)(?:null|Null|NULL|~)(#.*)?$")


def _norm(line: str) -> str:
    """A line's alignment key: whitespace and the spelling of null do not matter."""
    return _NULL_VALUE.sub(r"\1\2", re.sub(r"\s+", "", line))


def _anchors(base: list[str], orig: list[str]) -> dict[int, int]:
    """Map ``base`` line numbers to the ``orig`` lines they align with (see :func:`_merge`)."""
    anchor: dict[int, int] = {}
    for tag, i1, i2, j1, _j2 in _opcodes([_norm(x) for x in base], [_norm(x) for x in orig]):
        if tag == "equal":
            for k in range(i2 - i1):
                anchor[i1 + k] = j1 + k
    return anchor


def _common_ends(a: Sequence[Any], b: Sequence[Any]) -> tuple[int, int]:
    """How many items ``a`` and ``b`` share at their start, and then at their end."""
    n = min(len(a), len(b))
    head = 0
    while head < n and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
        tail += 1
    return head, tail


def _opcodes(a: Sequence[Any], b: Sequence[Any]) -> list[tuple[str, int, int, int, int]]:
    """``difflib`` opcodes from ``a`` to ``b``, matching only what lies between their common
    start and end (an edit changes a few lines of a long file: the rest need not be matched)."""
    head, tail = _common_ends(a, b)
    ops: list[tuple[str, int, int, int, int]] = []
    if head:
        ops.append(("equal", 0, head, 0, head))
    a_end, b_end = len(a) - tail, len(b) - tail
    if head < a_end or head < b_end:
        matcher = difflib.SequenceMatcher(None, a[head:a_end], b[head:b_end], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            ops.append((tag, i1 + head, i2 + head, j1 + head, j2 + head))
    if tail:
        ops.append(("equal", a_end, len(a), b_end, len(b)))
    return ops


#: A merge's changes to the real text: ``(start, end, count)``, the real lines
#: ``[start, end)`` replaced by ``count`` new lines, in order and not overlapping.
_Changes = list[tuple[int, int, int]]


def _merge(
    orig: list[str],
    base: list[str],
    new: list[str],
    anchor: dict[int, int] | None = None,
    base_parents: list[tuple[str, ...]] | None = None,
) -> tuple[list[str], _Changes]:
    """Apply the changes from ``base`` to ``new`` onto ``orig`` (``base`` ≈ ``orig``).

    ``base`` lines are aligned with ``orig`` lines ignoring whitespace and null spellings (the
    dumper's usual liberties). A changed hunk whose ``base`` lines all align with consecutive
    ``orig`` lines replaces exactly those; an insertion goes right after the ``orig`` line of
    the ``base`` line before it. Otherwise (or if hunks would overlap) the hunk is widened until
    both edges align, and the ``orig`` lines between are replaced by the ``new`` lines between.

    :returns: the merged lines and where they differ from ``orig``.
    """
    if anchor is None:
        anchor = _anchors(base, orig)
    if base_parents is None:
        base_parents = _with_parents(base)
    newpos: dict[int, int] = {}
    hunks: list[tuple[int, int, int, int]] = []
    # Lines are compared with the keys they sit under, so `  enabled:` under `a:` never
    # matches `  enabled:` under `b:` when a block moves.
    for tag, i1, i2, j1, j2 in _opcodes(base_parents, _with_parents(new)):
        if tag == "equal":
            for k in range(i2 - i1):
                newpos[i1 + k] = j1 + k
        else:
            hunks.append((i1, i2, j1, j2))
    edits: list[tuple[int, int, list[str]]] = []
    for i1, i2, j1, j2 in hunks:
        edit = _direct_edit(anchor, i1, i2, len(base))
        if edit is None:
            return _merge_wide(orig, base, new, anchor=anchor, newpos=newpos, hunks=hunks)
        # New lines under a line the file spells differently (`b: null` that now has children,
        # maybe after comment lines): that line takes the dumper's spelling (`b:`) too.
        prev = i1 - 1
        while prev >= 0 and (not base[prev].strip() or base[prev].lstrip().startswith("#")):
            prev -= 1
        if (
            prev >= 0
            and _opens_block(base[prev], new[j1:j2])
            and all(i in anchor and i in newpos for i in range(prev, i1))
            and anchor[i1 - 1] - anchor[prev] == i1 - 1 - prev
            and base[prev] != orig[anchor[prev]]
        ):
            edits.append((anchor[prev], edit[1], new[newpos[prev] : j2]))
            continue
        edits.append((edit[0], edit[1], new[j1:j2]))
    out: list[str] = []
    changes: _Changes = []
    at = 0
    for start, end, lines in edits:
        if start < at:
            return _merge_wide(orig, base, new, anchor=anchor, newpos=newpos, hunks=hunks)
        out.extend(orig[at:start])
        out.extend(lines)
        changes.append((start, end, len(lines)))
        at = end
    out.extend(orig[at:])
    return out, changes


_KEY_AT = re.compile(r"^(?P<indent>[ ]*(?:-[ ]+)*)(?P<key>[^\s#\-][^#]*?):(?:[ ]|$)")


def _with_parents(lines: list[str]) -> list[tuple[str, ...]]:
    """Each line of a dump with the keys of the blocks it is in (by indentation)."""
    stack: list[tuple[int, str]] = []
    out: list[tuple[str, ...]] = []
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            m = _KEY_AT.match(line)
            indent = len(m["indent"]) if m else len(line) - len(line.lstrip(" -"))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            out.append((*(k for _i, k in stack), line))
            if m:
                stack.append((indent, m["key"]))
        else:
            out.append((*(k for _i, k in stack), line))
    return out


def _opens_block(parent: str, lines: list[str]) -> bool:
    """Whether the first content line of ``lines`` is nested under ``parent`` (deeper, or a
    same-column ``- `` item of a sequence value)."""
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        p_indent = len(parent) - len(parent.lstrip(" "))
        return indent > p_indent or (indent == p_indent and stripped.startswith("-"))
    return False


def _direct_edit(anchor: dict[int, int], i1: int, i2: int, n: int) -> tuple[int, int] | None:
    """The ``orig`` range a hunk on ``base[i1:i2]`` maps to, if it maps exactly."""
    if i1 < i2:
        if all(i in anchor for i in range(i1, i2)) and all(
            anchor[i + 1] == anchor[i] + 1 for i in range(i1, i2 - 1)
        ):
            return anchor[i1], anchor[i2 - 1] + 1
        return None
    if i1 - 1 >= 0 and i1 - 1 in anchor:
        return anchor[i1 - 1] + 1, anchor[i1 - 1] + 1
    if i1 < n and i1 in anchor:
        return anchor[i1], anchor[i1]
    return None


def _merge_wide(
    orig: list[str],
    base: list[str],
    new: list[str],
    *,
    anchor: dict[int, int],
    newpos: dict[int, int],
    hunks: list[tuple[int, int, int, int]],
) -> tuple[list[str], _Changes]:
    """The widening merge (see :func:`_merge`)."""

    def stable(i: int) -> bool:
        # Only a line the file spells exactly as the dumper does can be an edge: a respelled
        # one (`b: null` for `b:`) may need the dumper's spelling if new lines nest under it.
        return i in anchor and i in newpos and base[i] == orig[anchor[i]]

    regions: list[list[int]] = []
    for i1, i2, _j1, _j2 in hunks:
        lo = i1 - 1
        while lo >= 0 and not stable(lo):
            lo -= 1
        hi = i2
        while hi < len(base) and not stable(hi):
            hi += 1
        if regions and lo < regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], hi)
        else:
            regions.append([lo, hi])
    out: list[str] = []
    changes: _Changes = []
    o_at = 0
    for lo, hi in regions:
        o_lo = anchor[lo] + 1 if lo >= 0 else 0
        o_hi = anchor[hi] if hi < len(base) else len(orig)
        n_lo = newpos[lo] + 1 if lo >= 0 else 0
        n_hi = newpos[hi] if hi < len(base) else len(new)
        out.extend(orig[o_at:o_lo])
        out.extend(new[n_lo:n_hi])
        changes.append((o_lo, o_hi, n_hi - n_lo))
        o_at = o_hi
    out.extend(orig[o_at:])
    return out, changes
