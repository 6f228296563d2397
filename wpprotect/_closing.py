"""A context manager whose exit calls ``close()``: the base of the platforms and of the CLI's
progress bar. Standard library only, so the command line can use it without loading more."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closing"]


class Closing:
    """A context manager whose exit calls ``close()`` (platforms, progress bars)."""

    def close(self) -> None:
        """Release what the object holds; calling it twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
