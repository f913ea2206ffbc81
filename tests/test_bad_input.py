"""Every hyperparameter at, just outside and far outside its range, and non-numbers: through the
API, the CLI (exit 2, one line naming the value) and the dashboard's URL query parameters (a
crafted link never crashes the page, never exceeds the UI caps, and says what it ignored)."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from llc_core import cli
from llc_core.config import MAX_BURNIN, MAX_CHAINS, MAX_DRAWS, ConfigError, SGLDConfig
from llc_core.limits import UI_MAX_CHAINS, UI_MAX_DRAWS
from tests.conftest import ROOT

N = 4000
# field: (valid edge values, invalid values)
RANGES = {
    "epsilon": ([1e-12, 10.0], [0.0, -1e-4, 10.0001, 1e300, float("nan"), float("inf"), "0.1", None]),
    "gamma": ([0.0, 1e8], [-1e-9, 1e8 + 1, float("inf"), "big"]),
    "nbeta": ([1e-6, 1e12], [0.0, -5.0, 1e12 * 1.01, float("nan")]),
    "chains": ([1, MAX_CHAINS], [0, MAX_CHAINS + 1, 10**9, 2.5, "4", True]),
    "draws": ([1, MAX_DRAWS], [0, MAX_DRAWS + 1, -1, 1e3]),
    "burnin": ([0, MAX_BURNIN], [-1, MAX_BURNIN + 1, 2**40]),
    "thin": ([1, 1000], [0, 1001]),
    "batch_size": ([1, N], [0, N + 1, -64]),
    "noise_scale": ([0.0, 100.0], [-0.1, 100.1, float("nan")]),
    "seed": ([0, 2**63 - 1], [-1, 2**63, 1.5]),
}


@pytest.mark.parametrize("field, value", [(f, v) for f, (ok, _) in RANGES.items() for v in ok])
def test_api_accepts_the_edges(field, value):
    SGLDConfig(**{field: value}).validate(N)


@pytest.mark.parametrize("field, value", [(f, v) for f, (_, bad) in RANGES.items() for v in bad])
def test_api_names_the_bad_value_and_the_range(field, value):
    with pytest.raises(ConfigError) as err:
        SGLDConfig(**{field: value}).validate(N)
    message = str(err.value)
    assert message.startswith(f"{field}=") and ("must be" in message)


CLI_BAD = [("--epsilon", "0"), ("--epsilon", "abc"), ("--epsilon", "1e400"), ("--gamma", "-1"),
           ("--nbeta", "zero"), ("--nbeta", "-2x"), ("--chains", "0"), ("--chains", "65"), ("--chains", "1.5"),
           ("--draws", "0"), ("--draws", "200001"), ("--burnin", "-1"), ("--batch-size", "0"),
           ("--batch-size", "20000"), ("--noise-scale", "nan"), ("--seed", "-3"), ("--device", "tpu")]


@pytest.mark.parametrize("flag, value", CLI_BAD)
def test_cli_exits_2_with_one_line_naming_the_value(flag, value, capsys):
    code = cli.main(["estimate", "--toy", "crossing:1", flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:")
    assert value in err[0] or value.lstrip("-") in err[0]


# -- dashboard URLs ----------------------------------------------------------------------

def app_with(params):
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


URL_BAD = [("chains", "1000"), ("chains", "0"), ("chains", "abc"), ("draws", "1e12"), ("draws", "99999999"),
           ("burnin", "-1"), ("burnin", "1e9"), ("epsilon", "5"), ("epsilon", "nan"), ("gamma", "-3"),
           ("batch_size", "99999999"), ("noise_scale", "inf"), ("seed", "-5"), ("thin", "100000")]


@pytest.mark.parametrize("key, raw", URL_BAD)
def test_crafted_url_value_is_ignored_with_a_message_and_the_default_used(key, raw):
    at = app_with({"model": "mnist1d_mlp_k10_s0", key: raw})
    warnings = [w.value for w in at.warning]
    assert any(f"Ignored {key}={raw!r}" in w and "must be" in w for w in warnings), warnings
    assert at.session_state["chains"] <= UI_MAX_CHAINS and at.session_state["draws"] <= UI_MAX_DRAWS
    assert not at.button(key="run").disabled  # the page goes on with the model's default


def test_url_values_in_range_are_taken():
    at = app_with({"model": "toy:crossing:2", "chains": "3", "draws": "150", "epsilon": "1.0e-04"})
    assert at.slider(key="chains").value == 3 and at.number_input(key="draws").value == 150
    assert at.select_slider(key="epsilon").value == 1e-4 and not at.warning


def test_unknown_model_in_url_is_named_and_the_default_shown():
    at = app_with({"model": "../../etc/passwd"})
    assert any("Ignored model='../../etc/passwd'" in w.value for w in at.warning)
    assert at.selectbox(key="model").value == "mnist1d_cnn_k10_s0"


def test_bad_nbeta_in_url_disables_run():
    at = app_with({"model": "toy:crossing:1", "nbeta": "-1"})
    assert any("nbeta=-1.0 is invalid" in e.value for e in at.error) and at.button(key="run").disabled


def test_a_link_never_starts_a_job():
    at = app_with({"model": "toy:crossing:1", "run": "true", "chains": "32", "draws": "20000"})
    assert any("press **Run**" in i.value for i in at.info)  # idle: nothing started
