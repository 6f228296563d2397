"""The one rule for SDK clients an adapter holds: close what you created, never what you were given.

Both SDK walls (``_docker_api`` and ``_k8s_api``) keep their client in an object derived from
:class:`OwnedClient`: it remembers the client it created itself, closes it once on
:meth:`~OwnedClient.close`, and warns with ``ResourceWarning`` when it is garbage-collected
unclosed (as an unclosed file does).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from typing import Any, ClassVar

__all__ = ["OwnedClient"]


class OwnedClient:
    """Base for an SDK connection that may have created its client."""

    #: The ``ResourceWarning`` text when an instance that created its client is not closed.
    unclosed_message: ClassVar[str] = "a platform that created its client was not closed"

    def __init__(self) -> None:
        self._created: Any = None
        self._closed = False
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the client if it was created here; this object cannot be used after."""
        with self._lock:
            self._closed = True
            created, self._created = self._created, None
        if created is not None:
            with contextlib.suppress(Exception):
                created.close()

    def __del__(self) -> None:
        created = getattr(self, "_created", None)
        if created is not None:
            warnings.warn(self.unclosed_message, ResourceWarning, stacklevel=1, source=self)
            with contextlib.suppress(Exception):
                created.close()
