"""One scan's report: every program seen, and the assessment made from them.

Above :mod:`wpprotect.tc._assess` (which :meth:`TCReport.assess` calls) and
:mod:`wpprotect.tc._model` (the rows it holds). Data only: nothing here reads a file, the kernel or
an API; the classifier priority to judge against is given by the caller (the CLI, ``doctor`` and
the platforms resolve the agent's effective value and pass it in).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from wpprotect.tc._assess import DEFAULT_CLASSIFIER_PRIORITY, assess, check_priority, group_hooks
from wpprotect.tc._model import (
    PROGRAM_COLUMNS,
    Assessment,
    DeviceInfo,
    NamespaceInfo,
    TCProgram,
    dumps,
    fields_dict,
    html_table,
    render_table,
)

__all__ = ["TCReport"]


def _coerce_programs(value: Iterable[TCProgram]) -> tuple[TCProgram, ...]:
    return tuple(value)


def _coerce_namespaces(value: Iterable[NamespaceInfo | str]) -> tuple[NamespaceInfo, ...]:
    return tuple(v if isinstance(v, NamespaceInfo) else NamespaceInfo(label=v) for v in value)


def _coerce_strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _coerce_devices(value: Iterable[DeviceInfo]) -> tuple[DeviceInfo, ...]:
    return tuple(value)


@attrs.frozen(repr=False)
class TCReport:
    """Everything one scan saw: programs on every device of every namespace scanned.

    :ivar programs: clsact filters and tcx/netkit programs.
    :ivar namespaces: the namespaces scanned (strings are accepted and wrapped).
    :ivar warnings: what could not be read (a namespace or device vanished mid-scan...).
    :ivar tcx_supported: whether the kernel answered tcx queries (None: not asked).
    :ivar probe: whether programs were test-run, per traffic class, to learn their verdict.
    :ivar classifier_priority: Datadog's classifier priority to judge against, when the scan was
        given one (None: :meth:`assess` uses its argument, else the agent's default 10).
    :ivar classifier_priority_source: where that value came from (``caller``, a config file...).
    :ivar devices: every device owning a clsact or legacy ``ingress`` qdisc, with its shared
        blocks (the assessment looks there for devices Datadog's classifier is missing from).
    """

    programs: tuple[TCProgram, ...] = attrs.field(converter=_coerce_programs, default=())
    namespaces: tuple[NamespaceInfo, ...] = attrs.field(converter=_coerce_namespaces, default=())
    warnings: tuple[str, ...] = attrs.field(converter=_coerce_strs, default=())
    tcx_supported: bool | None = None
    probe: bool = False
    classifier_priority: int | None = None
    classifier_priority_source: str | None = None
    devices: tuple[DeviceInfo, ...] = attrs.field(converter=_coerce_devices, default=())

    def assess(
        self,
        classifier_priority: int | None = None,
        *,
        agent_version: str | None = None,
        cilium_version: str | None = None,
        source: str | None = None,
        network_detection: bool | None = None,
        workload_protection: bool | None = None,
        detection_source: str | None = None,
    ) -> Assessment:
        """Judge the programs against Datadog's classifier priority (the finding table in
        ``docs/reference/contract.md``).

        No file is read: to judge against the agent's configured priority, read it first (e.g.
        ``wpprotect.config.effective_value(wpprotect.config.CLASSIFIER_PRIORITY)``) and pass it;
        the same for whether network detection is on (``NETWORK_ENABLED``, ``CWS_ENABLED``).
        Namespaces kept alive only by an agent's descriptor (``netns-held-by-agent``) are judged
        from :attr:`namespaces` as the scan recorded them.

        :param classifier_priority: the priority to judge against; None uses the report's value,
            else the agent's default 10.
        :param agent_version: the Datadog Agent version (e.g. ``"7.38.1"``), for the known
            Cilium race.
        :param cilium_version: the Cilium version (e.g. ``"1.9.4"``), for the same race.
        :param source: where ``classifier_priority`` came from, shown in the summary (default
            ``caller``).
        :param network_detection: True when the caller knows the agent's network detection is
            on: then every device with a clsact or ``ingress`` qdisc is expected to carry
            Datadog's classifiers (``datadog-classifier-missing``), not only in namespaces where
            they are seen elsewhere; False when the agent's effective configuration turns it off:
            then every Datadog classifier still attached is ``datadog-classifier-leftover``.
        :param workload_protection: the agent's effective ``runtime_security_config.enabled``;
            False as for ``network_detection``.
        :param detection_source: where those two values come from (e.g. the file), shown in the
            findings.
        :returns: the findings and the recommended priority.
        :raises InvalidArgumentError: the priority is not in 1..65535 or a version is malformed.
        """
        if classifier_priority is not None:
            prio, origin = check_priority(classifier_priority), source or "caller"
        elif self.classifier_priority is not None:
            prio = check_priority(self.classifier_priority)
            origin = self.classifier_priority_source or "caller"
        else:
            prio, origin = DEFAULT_CLASSIFIER_PRIORITY, "default"
        return assess(
            self.programs,
            prio,
            classifier_priority_source=origin,
            tcx_supported=self.tcx_supported,
            agent_version=agent_version,
            cilium_version=cilium_version,
            devices=self.devices,
            network_detection=network_detection,
            workload_protection=workload_protection,
            detection_source=detection_source,
            namespaces=self.namespaces,
        )

    def to_dict(
        self, classifier_priority: int | None = None, *, assessment: Assessment | None = None
    ) -> dict[str, Any]:
        """The ``wpprotect tc scan --json`` object.

        :param classifier_priority: as for :meth:`assess`.
        :param assessment: an assessment already made for this report (then
            ``classifier_priority`` is not used).
        :returns: ``programs``, ``findings``, ``classifier_priority`` (the contract's keys), then
            ``classifier_priority_source``, ``recommended_classifier_priority``,
            ``fixable_by_priority``, ``warnings``, ``namespaces``, ``tcx_supported``, ``probe``,
            ``devices``.
        """
        a = self.assess(classifier_priority) if assessment is None else assessment
        own = fields_dict(self)
        judged = fields_dict(a)
        return {
            "programs": own["programs"],
            "findings": judged["findings"],
            "classifier_priority": judged["classifier_priority"],
            "classifier_priority_source": judged["classifier_priority_source"],
            "recommended_classifier_priority": judged["recommended_classifier_priority"],
            "fixable_by_priority": judged["fixable_by_priority"],
            "warnings": own["warnings"],
            "namespaces": own["namespaces"],
            "tcx_supported": own["tcx_supported"],
            "probe": own["probe"],
            "devices": own["devices"],
        }

    def to_json(
        self, classifier_priority: int | None = None, *, assessment: Assessment | None = None
    ) -> str:
        """:returns: ``json.dumps(self.to_dict(...), ensure_ascii=False)``."""
        return dumps(self.to_dict(classifier_priority, assessment=assessment))

    def by_device(self) -> Mapping[tuple[str, str, str], tuple[TCProgram, ...]]:
        """Group the programs by hook.

        :returns: programs grouped by ``(netns, ifname, direction)``, in run order (tcx and
            netkit first by position, then clsact by priority).
        """
        return group_hooks(self.programs)

    def table(self) -> str:
        """:returns: the programs as a plain-text table, then the warnings."""
        out = render_table(PROGRAM_COLUMNS, (p._row() for p in self.programs))
        if not self.programs:
            out += "\n(no traffic-control programs found)"
        for w in self.warnings:
            out += f"\nwarning: {w}"
        return out

    def __repr__(self) -> str:
        return (
            f"<TCReport {len(self.programs)} programs in {len(self.namespaces)} namespaces, "
            f"{len(self.warnings)} warnings, tcx_supported={self.tcx_supported}>"
        )

    def _repr_html_(self) -> str:
        out = html_table(PROGRAM_COLUMNS, (p._row() for p in self.programs))
        if self.warnings:
            out += "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings) + "</ul>"
        return out
