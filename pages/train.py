"""Train: an MLP or CNN on a dataset and class subset, live; the result joins the model list."""

import streamlit as st

from llc_core.checkpoints import CACHE_DIR, SAFE_NAME, user_dir
from llc_core.data import DATASETS
from llc_core.jobs import TrainJob
from llc_core.limits import MAX_EPOCHS
from llc_core.recipes import arch_name
from llc_core.plots import training_figure
from llc_core.training import DEFAULT_TRAIN
from pages.common import presentation_toggle, send_to_estimate, show_figure
from pages.controls import run_stop_buttons
from pages.jobview import PageJobs
from pages.models import model_catalogue



def default_name(ss) -> str:
    return f"{ss['train_dataset']}_{ss['train_arch']}_k{ss['train_classes']}_s{ss['train_seed']}_user"


def check_name(name: str) -> str | None:
    """Why this name cannot be used, or None."""
    if not SAFE_NAME.fullmatch(name or ""):
        return f"name {name!r} is invalid: use 1–100 letters, digits, '.', '_' or '-'"
    for folder in (CACHE_DIR, user_dir()):
        if (folder / f"{name}.safetensors").exists():
            return f"a model named {name!r} already exists in {folder.name}/: choose another name"
    return None


st.title("Train a model")
st.caption(f"Trains with Adam and a cosine schedule to a minimum (λ̂ needs one), then saves the checkpoint to "
           f"`{user_dir()}` — never to `cached_models/` — where Estimate and Calibrate list it.")
page = PageJobs("train", start_keys=("train_run",))
job, running = page.job, page.running
ss = st.session_state
ss.setdefault("train_dataset", "mnist1d")
ss.setdefault("train_arch", "cnn")
ss.setdefault("train_classes", 10)
ss.setdefault("train_seed", 0)

with st.sidebar:
    presentation_toggle()
    st.selectbox("Dataset", DATASETS, key="train_dataset", persist_state="session", disabled=running,
                 help="MNIST-1D is generated offline; MNIST / Fashion-MNIST read IDX files (see README).")
    st.selectbox("Architecture", ["mlp", "cnn"], key="train_arch",
                 persist_state="session", format_func=arch_name, disabled=running)
    st.slider("Classes (digits 0..K−1)", 2, 10, key="train_classes", persist_state="session", disabled=running)
    st.number_input("Seed", 0, 2**31 - 1, key="train_seed", persist_state="session", disabled=running)
    recipe = DEFAULT_TRAIN[(ss["train_dataset"], ss["train_arch"])]
    if ss.get("train_recipe") != (ss["train_dataset"], ss["train_arch"]):
        ss["train_epochs"] = recipe.epochs  # each dataset/architecture has its own converging recipe
        ss["train_recipe"] = (ss["train_dataset"], ss["train_arch"])
    st.number_input("Epochs", 1, MAX_EPOCHS, key="train_epochs", persist_state="session", disabled=running,
                    help=f"The recipe for this pair: {recipe.epochs} epochs, Adam lr {recipe.lr:g}, "
                         f"batch {recipe.batch_size}.")
    st.checkbox("Equal n for every K (as in cached_models/)", value=True, key="train_same_n",
                persist_state="session", disabled=running)
    st.text_input("Save as", key="train_name", persist_state="session", placeholder=default_name(ss), disabled=running)
    name = (ss.get("train_name") or "").strip() or default_name(ss)
    problem = check_name(name)
    just_saved = job is not None and job.state == "done" and ss.get("train_info", {}).get("name") == name
    if problem and just_saved:
        st.info(f"Saved as {name!r}. To train another model, choose a new name.")
    elif problem and not running:
        st.error(problem)
    _, stop_clicked = run_stop_buttons("train_", page.busy, problem is None, "Train")

if stop_clicked:
    page.stop()
if page.pressed("train_run") and problem is None:
    user_dir().mkdir(parents=True, exist_ok=True)
    args = dict(dataset=ss["train_dataset"], arch=ss["train_arch"], classes=int(ss["train_classes"]),
                seed=int(ss["train_seed"]), out=user_dir() / f"{name}.safetensors", epochs=int(ss["train_epochs"]),
                same_n=bool(ss["train_same_n"]), overwrite=False)
    page.start(lambda: TrainJob(args), {"name": name, **{k: v for k, v in args.items() if k != "out"}}, "train_info")
    job = page.job

if page.idle:
    st.info("Choose a dataset, architecture and classes in the sidebar and press **Train**. The loss curve "
            "streams in; the finished model appears in the model list of every page.")
    st.stop()


def live_view():
    state, progress, meta, error = job.peek()
    info = ss.get("train_info", {})
    history = job.snapshot_history()
    epochs = job.epochs or info.get("epochs")
    st.subheader(f"{info.get('name')}: {arch_name(info.get('arch', ''))} on {info.get('dataset')}, "
                 f"K = {info.get('classes')}, seed {info.get('seed')}")
    if state == "failed":
        st.error(f"Training failed: {error}")
        return
    if state == "running":
        text = (f"epoch {progress.epoch} / {progress.epochs} · loss {progress.train_loss:.4f} · "
                f"{progress.seconds:.0f} s" if progress else "loading the data…")
        st.progress(len(history) / max(1, epochs or 1), text=text)
    elif state == "stopped":
        st.warning(f"Stopped after {len(history)} epochs: a half-trained w* is not a minimum (λ̂ would be "
                   f"negative), so nothing was saved.")
    elif state == "done" and meta is not None:
        saved = (f"Saved **{meta['name']}**: test accuracy {meta['test_accuracy']:.1%}, train accuracy "
                 f"{meta['train_accuracy']:.1%}, train loss {meta['train_loss']:.4f}, {meta['num_params']:,} "
                 f"parameters, {meta['train_seconds']:.0f} s.")
        if meta.get("converged") is False:  # saved, but marked: Estimate flags its λ̂ (wstar_not_minimum)
            st.warning(saved + "  \n**Stopped far from convergence** — " + "; ".join(meta["convergence_notes"])
                       + ". λ̂ needs a minimum: it will be flagged `wstar_not_minimum`. **Fix:** train again "
                       "with the recipe's epochs.", icon="⚠️")
        else:
            st.success(saved)
        model_catalogue.clear()
        if st.button("Estimate λ̂ for it", key="train_open", type="primary"):
            send_to_estimate(meta["name"], {}, note=f"Loaded {meta['name']} with its default settings.")
    show_figure(training_figure(history, epochs), key="train_chart")


page.live(live_view)
