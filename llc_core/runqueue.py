"""A server-wide limit on concurrent runs, fair across sessions.

Every long piece of work the dashboard starts (an estimate, a sweep, an experiment, training)
asks a `RunQueue` for a slot first. Order: the waiting run whose owner (a browser session)
holds the fewest slots right now goes next; among equals, the owner served longest ago (never
served first), then the run that came first. So a session alone may use every slot, but once
others wait, it cannot take another before each waiting session got its turn (round-robin
across sessions, first-come-first-served within one).

No streamlit here: the dashboard keeps one queue per server process.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field

MAX_REMEMBERED = 1000  # owners whose last turn is remembered; idle ones are forgotten beyond this
WAIT_POLL = 0.1  # seconds between checks of a waiting run's cancel flag (Stop while queued)


def default_limit() -> int:
    """`LLC_MAX_RUNS` if set (a positive integer), else the number of cores."""
    text = os.environ.get("LLC_MAX_RUNS", "").strip()
    if not text:
        return max(1, os.cpu_count() or 1)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"LLC_MAX_RUNS={text!r}: expected a whole number of runs ≥ 1")
    return value


@dataclass(eq=False)
class Ticket:
    """One run's place: waiting until `granted`, then holding a slot until released."""

    owner: object
    seq: int
    granted: bool = False
    released: bool = False
    submitted_at: float = field(default_factory=time.monotonic)
    granted_at: float | None = None


class RunQueue:
    """At most `limit` runs hold a slot at once; the rest wait in fair order."""

    def __init__(self, limit: int | None = None):
        self.limit = default_limit() if limit is None else int(limit)
        if self.limit < 1:
            raise ValueError(f"run limit {limit!r}: expected ≥ 1")
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._waiting: list[Ticket] = []
        self._running: list[Ticket] = []
        self._served: dict = {}  # owner -> grant counter value of its latest grant (round-robin)
        self._grants = itertools.count()

    def submit(self, owner) -> Ticket:
        """Join the queue; the ticket is granted at once if a slot is free and fairness allows."""
        with self._cond:
            ticket = Ticket(owner, next(self._seq))
            self._waiting.append(ticket)
            self._grant()
            return ticket

    def wait(self, ticket: Ticket, cancel=None, timeout: float | None = None) -> bool:
        """Block until the ticket holds a slot (True), or `cancel` is set / `timeout` passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not ticket.granted:
                if (cancel is not None and cancel.is_set()) or ticket.released:
                    return False
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                self._cond.wait(WAIT_POLL)
            return True

    def release(self, ticket: Ticket) -> None:
        """Leave the queue (waiting or running); the freed slot goes to the next in order."""
        with self._cond:
            if ticket.released:
                return
            ticket.released = True
            for line in (self._waiting, self._running):
                if ticket in line:
                    line.remove(ticket)
            if len(self._served) > MAX_REMEMBERED:
                self._forget_idle_owners()
            self._grant()
            self._cond.notify_all()

    def position(self, ticket: Ticket) -> int:
        """0 while the ticket holds a slot (or is gone), else its place in line (1 = next)."""
        with self._cond:
            if ticket.granted or ticket.released:
                return 0
            order = self._order(self._held_counts())
            return order.index(ticket) + 1

    def snapshot(self) -> dict:
        """How many runs hold a slot and how many wait, for a status line."""
        with self._cond:
            return {"limit": self.limit, "running": len(self._running), "waiting": len(self._waiting)}

    # -- order -------------------------------------------------------------------------
    def _held_counts(self) -> dict:
        counts: dict = {}
        for t in self._running:
            counts[t.owner] = counts.get(t.owner, 0) + 1
        return counts

    def _order(self, held: dict) -> list[Ticket]:
        """The waiting tickets in the order they would be granted if slots freed one by one."""
        held, served = dict(held), dict(self._served)
        waiting, order = list(self._waiting), []
        while waiting:
            best = min(waiting, key=lambda t: (held.get(t.owner, 0), served.get(t.owner, -1), t.seq))
            waiting.remove(best)
            order.append(best)
            held[best.owner] = held.get(best.owner, 0) + 1
            served[best.owner] = len(order) + 1e12  # after every real grant, in simulated order
        return order

    def _forget_idle_owners(self) -> None:
        active = {t.owner for t in self._waiting + self._running}
        self._served = {o: n for o, n in self._served.items() if o in active}

    def _grant(self) -> None:
        free = self.limit - len(self._running)
        if free <= 0 or not self._waiting:
            return
        for ticket in self._order(self._held_counts())[:free]:
            self._waiting.remove(ticket)
            ticket.granted, ticket.granted_at = True, time.monotonic()
            self._served[ticket.owner] = next(self._grants)
            self._running.append(ticket)
        self._cond.notify_all()
