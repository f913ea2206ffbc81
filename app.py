"""LLC Lab: calibrate the SGLD estimator of the local learning coefficient, visually."""

import streamlit as st

st.set_page_config(page_title="LLC Lab", page_icon="λ", layout="wide")
navigation = st.navigation([
    st.Page("pages/estimate.py", title="Estimate", icon="📈", default=True),
])
navigation.run()
