"""LLC Lab: calibrate the SGLD estimator of the local learning coefficient, visually."""

from pages.warmup import warm

warm()  # every import the pages need, once, before any page runs (pages/warmup.py says why)

import streamlit as st  # noqa: E402
import torch  # noqa: E402

from pages.browser import keep_cookie  # noqa: E402
from pages.navigation import app_navigation  # noqa: E402

# One intra-op thread per run: runs from several sessions then share the cores instead of
# oversubscribing them (spinning OpenMP workers made a contended run 3-10× slower).
torch.set_num_threads(1)

st.set_page_config(page_title="LLC Lab", page_icon="λ", layout="wide")
navigation = app_navigation()
keep_cookie()  # before the page runs: a page may end its run early (st.stop, st.rerun)
navigation.run()
