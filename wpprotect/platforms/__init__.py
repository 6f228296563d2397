"""Platform adapters: one protocol, three adapters (host, Docker, Kubernetes).

The Docker and Kubernetes adapters import their SDK only when they are first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wpprotect import _lazy
from wpprotect._contract import Component, ExecResult, Platform, Scope
from wpprotect.platforms._base import BasePlatform

if TYPE_CHECKING:
    from wpprotect.platforms.docker import DockerPlatform
    from wpprotect.platforms.host import HostPlatform
    from wpprotect.platforms.kubernetes import KubernetesPlatform

__all__ = [
    "BasePlatform",
    "Component",
    "DockerPlatform",
    "ExecResult",
    "HostPlatform",
    "KubernetesPlatform",
    "Platform",
    "Scope",
]

_LAZY = {
    "DockerPlatform": "wpprotect.platforms.docker",
    "HostPlatform": "wpprotect.platforms.host",
    "KubernetesPlatform": "wpprotect.platforms.kubernetes",
}

__getattr__, __dir__ = _lazy.attach(__name__, globals(), _LAZY, __all__)
