"""LLC Lab: calibrate the SGLD estimator of the local learning coefficient, visually."""

import streamlit as st
import torch

# One intra-op thread per run: runs from several sessions then share the cores instead of
# oversubscribing them (spinning OpenMP workers made a contended run 3-10× slower).
torch.set_num_threads(1)

st.set_page_config(page_title="LLC Lab", page_icon="λ", layout="wide")
navigation = st.navigation({
    "Estimate": [
        st.Page("pages/estimate.py", title="Estimate", icon=":material/show_chart:", default=True),
        st.Page("pages/compare.py", title="MLP vs CNN", icon=":material/compare_arrows:"),
    ],
    "Tune and explore": [
        st.Page("pages/calibrate.py", title="Calibrate", icon=":material/tune:"),
        st.Page("pages/variability.py", title="Task variability", icon=":material/bar_chart:"),
    ],
    "Teach and build": [
        st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    ],
})
navigation.run()
