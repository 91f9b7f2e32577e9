"""The rate limits' in-process storage (``RATE_LIMIT_STORAGE=memory://``).

limits' ``MemoryStorage`` starts a new timer thread, to drop expired counters, whenever the
last one has finished, at most every 10 ms: under load that is a thread start every 10 ms
per process, about a tenth of a consumer scan's CPU (py-spy, bench/bench_consumer.py).
The counters do not need it: a counter past its window is dropped when it is next read.
This storage does the same cleaning in the request's thread, at most once a second.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from limits.storage import MemoryStorage

#: The scheme :func:`app.create_app` gives Flask-Limiter for ``memory://``.
SCHEME = "trace-memory://"


class InlineExpiryMemoryStorage(MemoryStorage):
    """``MemoryStorage`` whose expired counters are dropped inline, once a second."""

    STORAGE_SCHEME: ClassVar[list[str]] = ["trace-memory"]
    CLEAN_EVERY_S = 1.0

    def __init__(self, uri: str | None = None, **options) -> None:
        super().__init__(uri, **options)
        self._next_clean = time.monotonic() + self.CLEAN_EVERY_S
        self._cleaning = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the timer thread
        now = time.monotonic()
        if now < self._next_clean or not self._cleaning.acquire(blocking=False):
            return
        try:
            self._next_clean = now + self.CLEAN_EVERY_S
            self._MemoryStorage__expire_events()
        finally:
            self._cleaning.release()
