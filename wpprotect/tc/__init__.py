"""Traffic-control inspection: which eBPF classifiers run before Datadog's, and what they return.

- :class:`TCInspector` scans clsact filters and tcx/netkit programs in one or every network
  namespace (netlink and ``bpf(2)``, read-only unless ``probe=True``).
- :class:`TCReport` holds what it saw (:class:`TCProgram` rows) and judges it with
  :meth:`TCReport.assess` against Datadog's classifier priority (:class:`Finding` rows).

This package is pyroute2's only home in wpprotect; the scan itself does not need it.
"""

from __future__ import annotations

from wpprotect.tc._inspector import TCInspector
from wpprotect.tc._model import Assessment, Finding, TCProgram, TCReport

__all__ = ["Assessment", "Finding", "TCInspector", "TCProgram", "TCReport"]
