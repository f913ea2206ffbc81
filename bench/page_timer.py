"""Timing the dashboard's reactions on the page's own clock, for the browser benchmarks.

`ARM` (run it with page.evaluate(ARM, [button_selector, [mark, ...]]) before the click) notes
when the click on that button reaches the page, then, on every DOM change, whether each mark's
condition holds yet; a mark's time is the first animation frame after its condition held, in
seconds after the click. `READ` returns {mark: seconds} for the marks reached so far.

Why not time from the Python side: Playwright's waits poll the page through its driver process,
and on this 2-core machine, busy with the runs and the browser, they saw the first live point
1.2–3 s after the page had drawn it (2026-12-03, bench/ui_latency.py prints both): that is the
harness, not what a person in front of the page sees.

Marks:
- `place`: the page says where the run stands, its place in the queue or its status line;
- `point`: the first point of a live chart is drawn;
- `stopped`: the status line says the run stopped.
"""

ARM = """([button, names]) => {
  const lines = () => [...document.querySelectorAll('[data-testid="stMarkdownContainer"] p')].map(e => e.textContent);
  const tests = {
    place: () => lines().some(t => t.startsWith('Status:') || t.startsWith('Queued:')),
    point: () => !!document.querySelector('.js-plotly-plot .scatterlayer .trace path'),
    stopped: () => lines().some(t => t.startsWith('Status:') && t.includes('stopped')),
  };
  const timer = window.__llcTimer = {t0: null, marks: {}};
  document.addEventListener('click', e => {
    if (timer.t0 === null && e.target.closest(button)) timer.t0 = performance.now();
  }, true);
  const pending = new Set(names);
  const observer = new MutationObserver(() => {
    if (timer.t0 === null) return;
    for (const name of [...pending]) {
      if (!tests[name]()) continue;
      pending.delete(name);
      requestAnimationFrame(() => { timer.marks[name] = (performance.now() - timer.t0) / 1000; });
    }
    if (!pending.size) observer.disconnect();
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}"""

READ = "() => window.__llcTimer ? window.__llcTimer.marks : {}"


def reached(names) -> str:
    """A page.wait_for_function expression: every one of these marks has its time."""
    return "() => window.__llcTimer && " + " && ".join(f"window.__llcTimer.marks.{n} !== undefined" for n in names)
