"""``wpprotect doctor`` as a library: find what is installed, what runs, and what is wrong.

:func:`diagnose` looks at the host install (``/opt/datadog-agent`` and ``/etc/datadog-agent``),
the agent processes running on the machine, the effective Workload Protection settings and where
each comes from, agent containers (Docker) and agent pods (Kubernetes) when those are reachable,
the traffic-control classifiers (as root), and optionally runs the runtime self-test. Every
probe of a daemon or an API runs with a short deadline, so ``diagnose()`` never hangs, and every
part that cannot run says why in its :class:`Check` (status ``skipped``).

Each check is a function from a context (the options, and what earlier checks learned) to a
list of :class:`Check`, one module per area: the host install, settings, containers and pods,
traffic control, the self-test.

>>> from wpprotect.doctor import diagnose
>>> report = diagnose(install_dir="/nonexistent", config_dir="/nonexistent",
...                   docker=False, kubernetes=False, tc=False)
>>> [c.status for c in report.checks if c.name == "docker"]
['skipped']
>>> report.exit_status
0
"""

from __future__ import annotations

from wpprotect.doctor._procs import RunningComponent, running_components
from wpprotect.doctor._report import CHECK_STATUSES, Check, CheckStatus, DoctorReport
from wpprotect.doctor._runner import diagnose

__all__ = [
    "CHECK_STATUSES",
    "Check",
    "CheckStatus",
    "DoctorReport",
    "RunningComponent",
    "diagnose",
    "running_components",
]

for _cls in (Check, DoctorReport, RunningComponent):
    _cls.__module__ = __name__
del _cls
