"""Learn: the LLC estimator for a workshop audience, with every failure provoked live on a toy."""

import math

import pandas as pd
import streamlit as st

from llc_core.demos import DEMOS, demo_config, demo_task
from llc_core.jobs import EstimateJob
from llc_core.toys import crossing_lambda, parse_toy
from pages.common import presentation_toggle
from pages.jobview import PageJobs
from pages.models import TOYS, cached_task
from pages.live import numbers, run_info, run_panel


def md(text: str) -> str:
    """Plain text for markdown: "w*" is a name here, not the start of emphasis."""
    return text.replace("*", "\\*")


page = PageJobs("learn", start_keys=tuple(f"learn_{demo.key}" for demo in DEMOS) + ("learn_toy_run",))
with st.sidebar:
    presentation_toggle()

st.title("Learn: estimating the local learning coefficient")
st.markdown(r"""
The **local learning coefficient** λ(w\*) measures how many effective dimensions a trained network
uses near its weights w\*: a regular model with d parameters has λ = d/2; singular ones (all neural
networks) have less. It is estimated (Lau et al. 2023) from samples of a posterior *localized* at w\*:
""")
st.latex(r"\hat\lambda(w^*) \;=\; n\beta\,\Big(\mathbb{E}_{w \sim p_{\beta,\gamma}}\big[L_n(w)\big] - L_n(w^*)\Big),"
         r"\qquad p_{\beta,\gamma}(w) \propto \exp\!\Big(-n\beta\,L_n(w) - \tfrac{\gamma}{2}\lVert w - w^*\rVert^2\Big)")
st.markdown(r"""
with nβ = n / log n by default. The expectation is taken with **SGLD** chains started at w\*; each step is
""")
st.latex(r"w_{t+1} = w_t + \tfrac{\varepsilon}{2}\Big(-n\beta\,\nabla L_m(w_t) - \gamma\,(w_t - w^*)\Big)"
         r" + \mathcal{N}(0,\ \varepsilon I)")
st.markdown("where L_m is the loss on a minibatch of m examples. Every knob changes what the chains see:")
st.table(pd.DataFrame([
    ("step size ε", "chains barely move; λ̂ reflects the start (high MALA acceptance, not stationary)",
     "discretisation bias, then divergence (low MALA acceptance, diverged)", "largest ε with MALA ≈ 0.9"),
    ("localization γ", "chains wander off w*, find lower loss: λ̂ negative", "chains held too tightly: λ̂ biased low",
     "a γ where λ̂ does not change with γ"),
    ("inverse temperature nβ", "posterior too broad, the asymptotics don't apply",
     "posterior too narrow for SGLD to sample at a stable ε", "n / log n (WBIC)"),
    ("chains", "no way to see chains disagree", "costs time only", "4–8"),
    ("draws", "estimate not settled (not stationary, chains disagree)", "costs time only",
     "until the running λ̂ is flat"),
    ("burn-in", "the climb away from w* is averaged in: λ̂ low", "costs time only",
     "until the loss trace has levelled"),
    ("batch size m", "noisy gradients (SGLD's extra noise)", "slower steps", "a few hundred"),
], columns=["hyperparameter", "too small", "too large", "good choice"]).set_index("hyperparameter"))

st.header("Failure signatures, live")
st.caption("Each button runs a deliberately broken estimate on a toy (a few seconds; the calibrated control, "
           "at full length, about ten) and shows the flag the dashboard raises, with its likely cause and fix, "
           "right here under the buttons.")
clicked = None
for i, demo in enumerate(DEMOS):
    if i % 3 == 0:
        cols = st.columns(3)
    cols[i % 3].button(md(demo.title), key=f"learn_{demo.key}", disabled=page.busy, width="stretch")
    if page.pressed(f"learn_{demo.key}"):
        clicked = demo


def start(task, config, label, story, origin):
    page.start(lambda: EstimateJob(task, config),
               {**run_info(task, label, "auto: n/log n"), "story": story, "origin": origin}, "learn_info")


def result_summary(job, info: dict) -> None:
    """The demo's answer at the top of its result, so it is in view after the click: the flags it
    raised (the full cause and fix follow below) and λ̂ against the known answer, "+x% vs target"."""
    _, status, lam, _, _, _, final = numbers(job)
    if final is None:
        return
    left, right = st.columns(2)
    with left.container(key="learn_flags"):
        codes = [f.code for f in final.warnings]
        (st.error if status in ("diverged", "negative") else st.warning if codes else st.success)(
            "Flags: " + (", ".join(f"**{c}**" for c in codes) if codes else "none — a clean run"))
    ref, what = (info.get("target"), "finite-n target") if info.get("target") else (info.get("true_lambda"), "true λ")
    if ref is not None and math.isfinite(lam) and ref != 0:
        right.metric(f"λ̂ vs the {what}", f"{lam / ref - 1:+.1%}", help=f"λ̂ = {lam:.4g}; the {what} is {ref:.4g}.")


def show_run(origin: str):
    """The demo's run, right under the buttons that started it; the page scrolls it into view."""
    info, job = st.session_state.get("learn_info", {}), page.job
    if job is None or info.get("origin") != origin:
        return
    with st.container(border=True, key=f"learn_result_{origin}"):
        text, stop = st.columns([5, 1], vertical_alignment="center")
        text.markdown(info.get("story", ""))
        if stop.button("Stop", key="learn_stop", disabled=not page.busy, width="stretch"):
            page.stop()
        page.live(lambda: (result_summary(job, info), run_panel(job, info, key="learn")))
    if st.session_state.pop("learn_scroll", None) == origin:
        scroll_into_view(f"learn_result_{origin}")


def scroll_into_view(key: str) -> None:
    """Bring the container with this key to the top of the window (st.container(key=...) gives it
    the documented CSS class st-key-KEY); a zero-height script, no private API."""
    st.html(f"""<script>
      const doc = window.parent.document;
      setTimeout(() => doc.querySelector('.st-key-{key}')?.scrollIntoView({{behavior: 'smooth', block: 'start'}}), 300);
    </script>""", unsafe_allow_javascript=True)


if clicked is not None:
    task = demo_task(clicked)
    st.session_state["learn_scroll"] = "demo"  # read by show_run() below
    start(task, demo_config(clicked, task), clicked.key, f"**{md(clicked.title)}.** {md(clicked.story)}", "demo")
show_run("demo")

st.header("Models with a known λ")
st.markdown(r"""
On the **normal crossing** $K(w) = \tfrac12 \prod_i w_i^{2p_i}$, $\lambda = \min_i \frac{1}{2p_i}$ with
multiplicity $m$ (how many $p_i$ reach the minimum); on **deep linear networks** λ follows Aoyagi's formula.
Even an exact sampler does not return λ at finite n: the estimator's own expectation is
$n\beta\,\mathbb{E}[K] \approx \lambda - (m-1)/\log(n\beta)$, so for m > 1 it sits below λ. Where it can be computed (1–2
parameters) the page shows this exact **finite-n target** beside λ: the gap between λ̂ and the target is
sampler error, the gap between target and λ is the estimator's bias.
""")


@st.cache_data(show_spinner=False)
def toy_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(normal crossings with λ, multiplicity and the exact finite-n target; deep linear networks with
    Aoyagi's λ). Two tables, so that no cell reads "None" where a quantity does not apply."""
    crossings, dlns = [], []
    for spec in TOYS:
        task = parse_toy(spec)
        row = {"toy": spec, "parameters": task.num_params, "n": task.n, "λ": task.true_lambda}
        if task.info.get("kind") == "crossing":
            crossings.append({**row, "multiplicity": crossing_lambda(task.info["powers"])[1],
                              "finite-n target": task.target_lambda})
        else:
            lam = row.pop("λ")
            dlns.append({**row, "λ (Aoyagi)": lam})
    return pd.DataFrame(crossings), pd.DataFrame(dlns)


crossing_table, dln_table = toy_tables()
number = st.column_config.NumberColumn(format="%.4g")
st.dataframe(crossing_table, hide_index=True, width="stretch",
             column_config={"λ": number, "finite-n target": number})
st.caption("Deep linear networks: λ from Aoyagi's formula (no exact finite-n target at these sizes).")
st.dataframe(dln_table, hide_index=True, width="stretch", column_config={"λ (Aoyagi)": number})
left, right = st.columns([3, 1], vertical_alignment="bottom")
spec = left.selectbox("Estimate a known-λ toy with its calibrated settings", TOYS, key="learn_toy")
right.button("Estimate it", key="learn_toy_run", disabled=page.busy, width="stretch")
if page.pressed("learn_toy_run"):
    task = cached_task(f"toy:{spec}")
    st.session_state["learn_scroll"] = "toy"  # read by show_run() below
    start(task, task.defaults, f"toy:{spec}",
          f"**{spec}**, calibrated defaults: compare λ̂ with λ and the finite-n target.", "toy")
show_run("toy")
from pages.dimensions import rank_vs_llc_section; rank_vs_llc_section()  # noqa: E702 (issue 15)
