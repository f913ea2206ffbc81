"""Task variability: λ̂ against the number of classes for MLP and CNN, over the cached seeds."""

import pandas as pd
import streamlit as st

from llc_core.checkpoints import CACHE_DIR, list_checkpoints
from llc_core.jobs import VariabilityJob
from llc_core.limits import MAX_VARIABILITY_CHAINS, MAX_VARIABILITY_DRAWS
from llc_core.plots import variability_figure
from llc_core.recipes import arch_name
from llc_core.variability import cache_dir, per_k_rows, summarize
from pages.controls import run_stop_buttons
from pages.jobview import PageJobs



@st.cache_data(ttl=30, show_spinner=False)
def experiment_models() -> list[dict]:
    """MNIST-1D checkpoints of cached_models/ (equal n for every K), by architecture, K, seed."""
    metas = [m for m in list_checkpoints(CACHE_DIR) if m["dataset"] == "mnist1d"]
    return sorted(metas, key=lambda m: (m["arch"]["kind"], m["classes"], m["seed"]))


st.title("Task variability")
st.caption("λ̂ against the number of classes K = 2..10 for the MNIST-1D MLP and CNN of `cached_models/` "
           "(the same n = 4000 training examples for every K), mean ± std over seeds, with a least-squares "
           "line per architecture. Every run is cached on disk: revisiting, or rerunning the same settings, is "
           "instant.")
page = PageJobs("variability")
running = page.running
metas = experiment_models()

with st.sidebar:
    archs = sorted({arch_name(m["arch"]["kind"]) for m in metas})
    st.session_state.setdefault("var_archs", archs)
    st.session_state.setdefault("var_draws", 300)
    st.session_state.setdefault("var_chains", 2)
    st.multiselect("Architectures", archs, key="var_archs", persist_state="session", disabled=running)
    st.number_input("Draws per run", 50, MAX_VARIABILITY_DRAWS, step=50, key="var_draws", persist_state="session", disabled=running,
                    help="Each checkpoint's own SGLD defaults otherwise (ε, γ, burn-in, batch).")
    st.slider("Chains per run", 1, MAX_VARIABILITY_CHAINS, key="var_chains", persist_state="session", disabled=running)
    chosen = [m for m in metas if arch_name(m["arch"]["kind"]) in st.session_state["var_archs"]]
    st.caption(f"{len(chosen)} checkpoints")
    run_clicked, stop_clicked = run_stop_buttons("var_", running, bool(chosen))

if not metas:
    st.error(f"No MNIST-1D checkpoints in {CACHE_DIR}: rebuild them with `make models`.")
    st.stop()
if stop_clicked:
    page.stop()
if run_clicked and chosen:
    overrides = {"draws": int(st.session_state["var_draws"]), "chains": int(st.session_state["var_chains"])}
    page.start(lambda: VariabilityJob(chosen, overrides), overrides, "var_settings")

from pages.dimensions import dimension_vs_k_section; dimension_vs_k_section()  # noqa: E702 (issue 15)
if page.idle:
    st.info("Choose the architectures and run length in the sidebar and press **Run**. Runs done before with "
            "the same settings come from the cache at once.")
    st.stop()


def live_view():
    job = page.job
    state, current, _, error = job.peek()
    rows = job.snapshot_rows()
    total = len(job.items)
    if state == "failed":
        st.error(f"The experiment failed: {error}")
    elif state == "running":
        name = job.items[current]["name"] if current is not None else "…"
        st.progress(len(rows) / total, text=f"{len(rows)} of {total} runs done · running {name}")
    else:
        partial = " (stopped: partial results)" if state == "stopped" else ""
        cached = sum(r.cached for r in rows)
        st.caption(f"{len(rows)} of {total} runs{partial} · {cached} from the cache · settings "
                   f"{st.session_state.get('var_settings')}")
    if not rows:
        return
    summary = summarize(rows)
    st.plotly_chart(variability_figure(summary), key="var_chart")
    fits = pd.DataFrame([{"architecture": a, "slope dλ̂/dK": s["slope"], "intercept": s["intercept"], "R²": s["r2"],
                          "runs": sum(s["seeds"])} for a, s in summary.items()])
    st.dataframe(fits, hide_index=True, column_config={k: st.column_config.NumberColumn(format="%.3g")
                                                       for k in ("slope dλ̂/dK", "intercept", "R²")})
    table = pd.DataFrame(per_k_rows(summary, flag_mark=" ⚠")).rename(columns={a: f"{a} λ̂" for a in summary})
    st.dataframe(table, hide_index=True)
    st.caption("⚠: at least one seed's run was flagged (open it on Estimate to see why). "
               f"Cache: {cache_dir()}")
    with st.expander("Every run"):
        st.dataframe(pd.DataFrame([r.__dict__ for r in rows]), hide_index=True)


page.live(live_view)
