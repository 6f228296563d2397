"""Traffic-control inspection: which eBPF classifiers run before Datadog's, and what they return.

- :class:`TCInspector` scans clsact filters and tcx/netkit programs in one or every network
  namespace (netlink and ``bpf(2)``, read-only unless ``probe=True``).
- :class:`TCReport` holds what it saw (:class:`TCProgram` rows) and judges it with
  :meth:`TCReport.assess` against Datadog's classifier priority (:class:`Finding` rows).

This package is pyroute2's only home in wpprotect; the scan itself does not need it. The names
below are loaded on first use, so that the scan's reader (which needs neither attrs nor the
result model) can start before they are.
"""

from __future__ import annotations

from wpprotect import _lazy

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from wpprotect.tc._inspector import TCInspector
    from wpprotect.tc._model import Assessment, Finding, TCProgram, TCReport

__all__ = ["Assessment", "Finding", "TCInspector", "TCProgram", "TCReport"]

_LAZY = {
    "Assessment": "wpprotect.tc._model",
    "Finding": "wpprotect.tc._model",
    "TCInspector": "wpprotect.tc._inspector",
    "TCProgram": "wpprotect.tc._model",
    "TCReport": "wpprotect.tc._model",
}

__getattr__, __dir__ = _lazy.attach(__name__, globals(), _LAZY, __all__)
