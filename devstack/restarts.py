"""When `make run` restarts a process that died, and when it gives up (a crash loop)."""

from __future__ import annotations

from collections import defaultdict, deque


class RestartBudget:
    """At most `max_restarts` restarts of one process within `window_s` seconds; beyond that the
    process is crash-looping (a bad setting, a broken install) and restarting it hides the error."""

    def __init__(self, *, max_restarts: int = 3, window_s: float = 60.0) -> None:
        if max_restarts < 0 or window_s <= 0:
            raise ValueError("max_restarts must be >= 0 and window_s positive")
        self.max_restarts = max_restarts
        self.window_s = window_s
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)

    def allow(self, name: str, now: float) -> bool:
        """Whether `name`, dead at `now`, may be restarted; a granted restart is counted."""
        recent = self._recent[name]
        while recent and now - recent[0] > self.window_s:
            recent.popleft()
        if len(recent) >= self.max_restarts:
            return False
        recent.append(now)
        return True
