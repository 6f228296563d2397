"""Traffic-control inspection: which eBPF classifiers run before Datadog's, and what they return.

- :class:`TCInspector` scans clsact filters and tcx/netkit programs in one or every network
  namespace (netlink and ``bpf(2)``, read-only unless ``probe=True``).
- :class:`TCFleetReport` joins every node's scan of a cluster: a row per node, a summary and
  one classifier priority for all of them.
- :class:`TCReport` holds what it saw (:class:`TCProgram` rows) and judges it with
  :meth:`TCReport.assess` against Datadog's classifier priority (:class:`Finding` rows).

The scan reads the kernel with its own lean netlink decoder; pyroute2 is used only by the lab
that builds test scenes (``wpprotect demo``).
"""

from __future__ import annotations

from wpprotect.tc._fleet import TCFleetReport, TCFleetRow
from wpprotect.tc._inspector import TCInspector
from wpprotect.tc._measure import TCMeasurement
from wpprotect.tc._model import Assessment, Finding, TCProgram
from wpprotect.tc._report import TCReport

__all__ = [
    "Assessment",
    "Finding",
    "TCFleetReport",
    "TCFleetRow",
    "TCInspector",
    "TCMeasurement",
    "TCProgram",
    "TCReport",
]

for _cls in (
    Assessment, Finding, TCFleetReport, TCFleetRow, TCInspector, TCMeasurement, TCProgram,
    TCReport,
):  # fmt: skip
    _cls.__module__ = __name__
del _cls
