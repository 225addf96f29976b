"""In-process rate limiters: a sliding window for sign-in attempts, a token bucket for API requests."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque


class SlidingWindowLimiter:
    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> float:
        """Record one attempt; return 0 if allowed, else the seconds until the next is allowed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.0, hits[0] + self.window - now)
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients so memory stays bounded
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                    del self._hits[k]
            return 0.0


class TokenBucketLimiter:
    """``limit`` requests per ``window_seconds`` and client, as a token bucket (bursts up to ``limit``).

    One float pair per client, whatever the limit, and at most ``max_keys`` clients: the least
    recently seen are forgotten first (a forgotten client simply starts again with a full bucket),
    and clients idle for a whole window are dropped as soon as they are the oldest.
    """

    def __init__(self, limit: int, window_seconds: float = 60.0, max_keys: int = 50_000) -> None:
        if limit < 1:
            raise ValueError("a token bucket needs a limit of at least 1")
        self.limit = limit
        self.window = window_seconds
        self.max_keys = max_keys
        self._rate = limit / window_seconds  # tokens regained per second
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last seen)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, key: str, now: float | None = None) -> float:
        """Take one token for ``key``; return 0 if allowed, else the seconds until a token is back."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.limit), now))
            tokens = min(float(self.limit), tokens + (now - last) * self._rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self._rate
            self._buckets[key] = (tokens, now)  # re-inserted last: the dict stays ordered by last seen
            self._prune(now)
            return wait

    def _prune(self, now: float) -> None:
        while self._buckets:
            oldest, (_, last) = next(iter(self._buckets.items()))
            if len(self._buckets) > self.max_keys or last <= now - self.window:
                del self._buckets[oldest]
            else:
                break
