"""A bounded, thread-safe LRU of finished forecasts, keyed by the exact model input."""

from __future__ import annotations

import hashlib
import json
import threading
from array import array
from collections import OrderedDict
from typing import Any, Hashable

from forecasting_api.model import ModelConfig
from forecasting_api.validation import CleanSeries


def cache_key(series: CleanSeries, horizon_hours: int, config: ModelConfig) -> str:
    """Hash of the normalized series, the horizon and every model setting.

    Region id and coordinates are not part of it: they do not change the fit, so two
    requests with the same numbers share one model run (the region's warm start only changes
    where the optimizer starts, not where it ends). Values are hashed by their exact bits
    (packed int64 seconds and float64), so 20.1 and 20.100000000000001 are different inputs.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([horizon_hours, config.key(), len(series.epoch_seconds)], sort_keys=True).encode())
    digest.update(array("q", series.epoch_seconds).tobytes())
    digest.update(array("d", series.values).tobytes())
    return digest.hexdigest()


class LruCache:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: Hashable, count_miss: bool = True) -> Any | None:
        """The value, or None. `count_miss=False` for a second look by the same request."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            if count_miss:
                self.misses += 1
            return None

    def put(self, key: Hashable, value: Any) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
                self.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "size": len(self._items),
                "capacity": self.capacity,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
            }
