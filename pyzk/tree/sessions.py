"""Session expiry, bucketed by tick (ZooKeeper's SessionTrackerImpl and ExpiryQueue).

A session is due to expire ``timeout`` ms after it was last heard from. Deadlines are
rounded *up* to the next multiple of the tick, so all sessions due in one tick share a
bucket and one tick expires a whole bucket at once. Touching a session moves it to a
later bucket. Time is passed in (monotonic ms); this module has no clock.
"""

from __future__ import annotations


class SessionTracker:
    def __init__(self, tick_ms: int) -> None:
        self.tick_ms = tick_ms
        self.timeouts: dict[int, int] = {}  # session id -> timeout ms
        self._deadline: dict[int, int] = {}  # session id -> its bucket
        self._buckets: dict[int, set[int]] = {}  # bucket time -> sessions due then

    def _round(self, t: int) -> int:
        return (t // self.tick_ms + 1) * self.tick_ms

    def add(self, session_id: int, timeout_ms: int, now: int) -> None:
        self.timeouts[session_id] = timeout_ms
        self.touch(session_id, now)

    def touch(self, session_id: int, now: int) -> bool:
        """Push a live session's deadline out; False if the session is unknown."""
        timeout = self.timeouts.get(session_id)
        if timeout is None:
            return False
        tick = self.tick_ms
        due = ((now + timeout) // tick + 1) * tick  # _round, inline: once per request
        old = self._deadline.get(session_id)
        if old == due:
            return True
        if old is not None:
            self._buckets[old].discard(session_id)
        self._deadline[session_id] = due
        self._buckets.setdefault(due, set()).add(session_id)
        return True

    def remove(self, session_id: int) -> None:
        self.timeouts.pop(session_id, None)
        due = self._deadline.pop(session_id, None)
        if due is not None:
            bucket = self._buckets.get(due)
            if bucket is not None:
                bucket.discard(session_id)

    def expire(self, now: int) -> list[int]:
        """Sessions whose deadline has passed, removed from tracking, oldest first."""
        due = sorted(t for t in self._buckets if t <= now)
        expired: list[int] = []
        for t in due:
            for sid in sorted(self._buckets.pop(t)):
                self.timeouts.pop(sid, None)
                self._deadline.pop(sid, None)
                expired.append(sid)
        return expired

    def buckets(self) -> list[tuple[int, list[int]]]:
        """(bucket time, its sessions) oldest first, empty buckets included (for ``dump``)."""
        return sorted((t, sorted(sids)) for t, sids in self._buckets.items())

    def __contains__(self, session_id: int) -> bool:
        return session_id in self.timeouts

    def __len__(self) -> int:
        return len(self.timeouts)
