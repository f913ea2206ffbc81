"""One skeleton for "a job with Run/Stop and a live view", used by every page.

A page names its jobs (one, or several started together), reads `running` to disable its
controls, calls `stop()` / `start(...)` on its buttons, and hands a draw function to `live()`:
that polls while the job runs, shows the queue position while it waits for a slot, and reruns
the page once the job ends so its controls come back.
"""

from __future__ import annotations

import streamlit as st

from llc_core.config import InputError
from pages.common import STOP_WAIT, session_jobs

POLL_SECONDS = 1.0  # the live view's refresh while a job runs or waits (the worker sends ≤ 4 snapshots/s)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def queue_line(job) -> str | None:
    """"Queued: 3rd in line — 2 runs ahead of you", or None when the job is not waiting."""
    position = job.queue_position()
    if position < 1:
        return None
    ahead = position - 1
    queue = job.runner.queue.snapshot()
    return (f"Queued: {ordinal(position)} in line — {ahead} run{'' if ahead == 1 else 's'} ahead of you "
            f"(the server runs {queue['limit']} at a time; {queue['running']} running now). "
            f"It starts by itself; **Stop** leaves the queue.")


class PageJobs:
    """The page's jobs in this browser session, by name (several are started and stopped together)."""

    def __init__(self, *names: str):
        self.names = names
        self.slot = session_jobs()
        self.jobs = [self.slot.get(name) for name in names]
        self.job = self.jobs[0]
        self.running = any(job is not None and job.running for job in self.jobs)
        self.idle = any(job is None for job in self.jobs)  # nothing started yet on this page

    def stop(self) -> None:
        for name in self.names:
            self.slot.stop(name, wait=STOP_WAIT)

    def start(self, make, info: dict | None = None, info_key: str | None = None) -> bool:
        """Build the jobs with `make()` (one job, or one per name; all built before any starts, so bad
        input starts none), start them, remember `info`, rerun. Bad input: shown, returns False."""
        try:
            made = make()
        except InputError as exc:
            st.error(str(exc))
            return False
        made = made if isinstance(made, (list, tuple)) else [made]
        for name, job in zip(self.names, made):
            self.slot.start(name, job)
        if info_key is not None:
            st.session_state[info_key] = info
        st.rerun()
        return True

    def live(self, draw) -> None:
        """Poll `draw()` while running; a waiting job shows its place in line instead."""
        running = self.running

        @st.fragment(run_every=POLL_SECONDS if running else None)
        def live_view():
            now = [self.slot.get(name) for name in self.names]
            waiting = [line for job in now if job is not None and (line := queue_line(job))]
            for line in waiting:
                st.info(line, icon=":material/hourglass_top:")
            if len(waiting) < sum(job is not None for job in now):  # something to draw already
                draw()
            if running and not any(job is not None and job.running for job in now):
                st.rerun()  # the job ended: re-enable the page's controls

        live_view()
