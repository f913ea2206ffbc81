"""One skeleton for "a job with Run/Stop and a live view", used by every page.

A page names its jobs (one, or several started together) and the keys of the buttons that start
them. It disables its settings with `running`, its Run/Stop pair with `busy`, asks `pressed(key)`
before calling `start(...)`, calls `stop()` on Stop, and hands a draw function to `live()`: that
polls while the job runs, shows the queue position while it waits for a slot, and reruns the page
once the job ends so its controls come back.

Why `busy` and `pressed`: a press is seen when the page begins (a button's value is in session
state before the button is drawn), so the run of the press already draws Run disabled and Stop
enabled, starts the job and shows its place in line, with no second full run of the page first.
Twenty sessions pressing Run at once meant forty page runs on one server before the last line
showed (1.57 s; issue 12's bar is 1 s). The settings stay enabled in that run, because Streamlit
drops the browser's value of a disabled widget; the live view's first tick redraws the page to
disable them. A button drawn disabled returns False, hence `pressed(key)`.
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

    def __init__(self, *names: str, start_keys: tuple[str, ...] = ()):
        self.names = names
        self.slot = session_jobs()
        self._read_jobs()
        pressed = [key for key in start_keys if st.session_state.get(key) is True]
        self.pressed_key = pressed[0] if pressed and not self.running else None
        self.busy = self.running or self.pressed_key is not None  # Run disabled, Stop enabled
        self.started = False  # in this run: the live view then redraws the page (settings disabled)
        self._error_key = f"start_error_{names[0]}"
        if message := st.session_state.pop(self._error_key, None):
            st.error(message)  # bad input of the press before: its run was drawn busy, then redrawn

    def _read_jobs(self) -> None:
        self.jobs = [self.slot.get(name) for name in self.names]
        self.job = self.jobs[0]
        self.running = any(job is not None and job.running for job in self.jobs)

    def pressed(self, key: str) -> bool:
        """Whether the start button with this key was pressed for this run (seen at the page's top)."""
        return self.pressed_key == key

    @property
    def idle(self) -> bool:
        """Nothing started yet on this page. A press that started nothing (its page went unready in
        the same run) redraws the page here, so Run does not stay disabled."""
        if self.pressed_key is not None and not self.started:
            self.pressed_key = None
            st.rerun()
        return any(job is None for job in self.jobs)

    def stop(self) -> None:
        for name in self.names:
            self.slot.stop(name, wait=STOP_WAIT)

    def start(self, make, info: dict | None = None, info_key: str | None = None) -> bool:
        """Build the jobs with `make()` (one job, or one per name; all built before any starts, so bad
        input starts none), start them, remember `info`. A page that saw the press at its top goes on
        drawing; any other reruns, to be drawn busy. Bad input: shown, returns False."""
        try:
            made = make()
        except InputError as exc:
            if self.busy:  # Run is drawn disabled for this press: draw the page again, with the message
                st.session_state[self._error_key] = str(exc)
                st.rerun()
            st.error(str(exc))
            return False
        made = made if isinstance(made, (list, tuple)) else [made]
        for name, job in zip(self.names, made):
            self.slot.start(name, job)
        if info_key is not None:
            st.session_state[info_key] = info
        if self.pressed_key is None:
            st.rerun()
        self.started = True
        self._read_jobs()
        self.running = True  # a job that ended at once still gets its final draw from live()
        return True

    def live(self, draw) -> None:
        """Poll `draw()` while running; a waiting job shows its place in line instead."""
        running, started, calls = self.running, self.started, [0]

        @st.fragment(run_every=POLL_SECONDS if running else None)
        def live_view():
            calls[0] += 1  # the first call is inline in the page's run, the next ones are its ticks
            if started and calls[0] == 2:
                st.rerun()  # the press's run drew the settings enabled: draw the page busy now
            now = [self.slot.get(name) for name in self.names]
            waiting = [line for job in now if job is not None and (line := queue_line(job))]
            for line in waiting:
                st.info(line, icon=":material/hourglass_top:")
            if len(waiting) < sum(job is not None for job in now):  # something to draw already
                draw()
            if running and not any(job is not None and job.running for job in now):
                st.rerun()  # the job ended: re-enable the page's controls

        live_view()
