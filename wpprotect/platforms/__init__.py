"""Platform adapters: one protocol, three adapters (host, Docker, Kubernetes).

The Docker and Kubernetes adapters import their SDK only when they are first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wpprotect.platforms._base import BasePlatform, Component, ExecResult, Platform, Scope

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wpprotect.platforms' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
