"""A Streamlit session held over the app's own websocket protocol, as a browser tab holds it, but
without a browser: for load benchmarks where twenty Chromium renderers would take the very cores
the server is being measured on (bench/workshop_load.py, 2026-12-03: the workers got 13-15% of a
core each while the pages redrew).

What it does, as Streamlit's frontend does (streamlit 1.67, read from its bundled JS and
`streamlit.web.server.starlette.starlette_websocket`):
- connects to /_stcore/stream with the `streamlit` subprotocol and asks for a script run
  (`BackMsg.rerun_script` with a `ClientState`), sending the query string the page last set;
- presses a button by sending its widget id with `trigger_value` set;
- re-runs every auto-refreshing fragment on its interval (`ForwardMsg.auto_rerun`, stopped by
  `stop_auto_rerun`), with `is_auto_rerun` set, whether or not a run is in flight, as the
  frontend's setInterval does;
- keeps, per delta path, the latest element the server sent, which is what the page shows.

What it does not: render anything, keep widget values other than the button pressed (every other
widget keeps the value the page's own query string gives it), or cache messages.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg


class StreamlitSession:
    """One session of a Streamlit app at `url` (http://host:port), opened with `query`."""

    def __init__(self, url: str, query: str = ""):
        self.url, self.query = url, query
        self.page_hash = ""
        self.elements: dict[tuple, object] = {}  # delta path → the latest Element there
        self.widget_ids: dict[str, str] = {}  # widget key → Streamlit's widget id
        self.exceptions: list[str] = []
        self._plotted: dict[tuple, bool] = {}  # delta path of each chart → it has a plotted x value
        self.finished_runs = 0
        self.changed = asyncio.Event()  # set on every message; waiters clear it
        self._fragments: dict[str, asyncio.Task] = {}
        self._ws = None
        self._reader = None

    async def open(self, timeout: float = 300) -> None:
        """Connect and wait for the first full run of the page."""
        self._ws = await websockets.connect(self.url.replace("http", "ws", 1) + "/_stcore/stream",
                                            subprotocols=["streamlit"], max_size=None, open_timeout=timeout,
                                            ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        await self.rerun()
        await self.wait_for(lambda: self.finished_runs > 0, timeout)

    async def close(self) -> None:
        for task in self._fragments.values():
            task.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()

    async def rerun(self, trigger: str | None = None, fragment_id: str = "", auto: bool = False) -> None:
        """Ask for a run: of the page, or of one fragment; `trigger` is the key of a pressed button."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.page_script_hash = self.query, self.page_hash
        state.fragment_id, state.is_auto_rerun = fragment_id, auto
        if trigger is not None:
            widget = state.widget_states.widgets.add()
            widget.id, widget.trigger_value = self.widget_ids[trigger], True
        await self._ws.send(msg.SerializeToString())

    async def click(self, key: str) -> None:
        await self.rerun(trigger=key)

    async def wait_for(self, condition, timeout: float) -> None:
        """Until condition() holds (checked after every message), or TimeoutError."""
        deadline = time.monotonic() + timeout
        while not condition():
            self.changed.clear()
            if self._reader.done():
                raise ConnectionError(f"the session's connection ended: {self._reader.exception()!r}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"not reached within {timeout:g} s")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def texts(self) -> list[str]:
        """The text of every markdown element and alert on the page now."""
        out = []
        for element in self.elements.values():
            kind = element.WhichOneof("type")
            if kind in ("markdown", "alert"):
                out.append(getattr(element, kind).body)
        return out

    def download(self, label: str) -> bytes:
        """The bytes behind the download button with this label (fetched as the browser would)."""
        button = self._download_button(label)
        if button is None:
            raise LookupError(f"no download button {label!r} on the page")
        with urllib.request.urlopen(self.url + button.url, timeout=60) as response:
            return response.read()

    def has_download(self, label: str) -> bool:
        return self._download_button(label) is not None

    def plotted_point(self) -> bool:
        """Whether a chart on the page has at least one plotted x value."""
        return any(self._plotted.values())

    def _download_button(self, label: str):
        return next((e.download_button for e in self.elements.values()
                     if e.WhichOneof("type") == "download_button" and e.download_button.label == label), None)

    async def _read(self) -> None:
        async for data in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            self._handle(msg)
            self.changed.set()

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(tuple(msg.metadata.delta_path), msg.delta.new_element)
        elif kind == "new_session":
            self.page_hash = msg.new_session.page_script_hash
        elif kind == "navigation" and msg.navigation.page_script_hash:
            self.page_hash = msg.navigation.page_script_hash  # the page being shown, as the frontend keeps it
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "script_finished":
            self.finished_runs += 1
        elif kind == "auto_rerun":
            self._every(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                task = self._fragments.pop(fragment_id, None)
                if task is not None:
                    task.cancel()

    def _element(self, path: tuple, element) -> None:
        self.elements[path] = element
        kind = element.WhichOneof("type")
        self._plotted.pop(path, None)
        if kind == "plotly_chart":  # parsed once on arrival: wait_for asks after every message
            spec = json.loads(element.plotly_chart.spec or "{}")
            self._plotted[path] = any(len(trace.get("x") or ()) for trace in spec.get("data", ()))
        if kind == "exception":
            self.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        widget = getattr(element, kind, None)
        widget_id = getattr(widget, "id", "")
        if widget_id.startswith("$$ID-"):
            self.widget_ids[widget_id.split("-", 2)[2]] = widget_id  # "$$ID-<hash>-<key>"

    def _every(self, fragment_id: str, interval: float) -> None:
        if fragment_id in self._fragments:
            return

        async def tick():
            while True:
                await asyncio.sleep(interval)
                await self.rerun(fragment_id=fragment_id, auto=True)

        self._fragments[fragment_id] = asyncio.create_task(tick())
