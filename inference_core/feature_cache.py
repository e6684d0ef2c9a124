"""A small least-recently-used cache keyed by frame index."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class FrameLRU(Generic[V]):
    """Keeps the `capacity` most recently used values; computes misses with `compute(t)`."""

    def __init__(self, capacity: int, compute: Callable[[int], V]) -> None:
        self.capacity = max(1, capacity)
        self._compute = compute
        self._items: OrderedDict[int, V] = OrderedDict()

    def get(self, t: int) -> V:
        if t in self._items:
            self._items.move_to_end(t)
            return self._items[t]
        value = self._compute(t)
        self._items[t] = value
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value

    def values(self) -> list[V]:
        return list(self._items.values())

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
