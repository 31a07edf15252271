"""One small registry shape for every extension point (stages, backends, probes, tasks, scenarios).

Registration rejects duplicates; a failed lookup raises :class:`~vla_kit.errors.RegistryError`
listing the names that exist.
"""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from vla_kit.errors import RegistryError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> item, in registration order.

    Args:
        family: what the items are, used in error messages (e.g. ``"stage"``).
    """

    def __init__(self, family: str) -> None:
        self.family = family
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Add ``item`` under ``name``; a name registered twice is an error."""
        if name in self._items:
            raise RegistryError(self.family, name, self.names(), duplicate=True)
        self._items[name] = item
        return item

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests use this to clean up the doubles they register)."""
        if name not in self._items:
            raise RegistryError(self.family, name, self.names())
        del self._items[name]

    def get(self, name: str) -> T:
        """The item registered as ``name``; raises RegistryError listing the known names."""
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(self.family, name, self.names()) from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
