"""Headless page tests with streamlit.testing.v1.AppTest, driving widgets by their contract keys."""

import time


def status_text(at):
    lines = [m.value for m in at.markdown if m.value.startswith("Status:")]
    return lines[0] if lines else ""


def run_to_end(at, timeout=180):
    at.button(key="run").click().run()
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.5)
        at.run()
        text = status_text(at)
        if any(word in text for word in ("finished", "failed", "stopped")):
            return text
    raise AssertionError(f"run did not finish: {status_text(at)!r}")


def configure(at, model, **values):
    at.selectbox(key="model").set_value(model).run()
    for key, value in values.items():
        widget = next(w for w in (at.select_slider, at.slider, at.number_input, at.text_input)
                      if any(x.key == key for x in w))
        widget(key=key).set_value(value)
    at.run()


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_default_page_lists_models_and_toys(app):
    options = app.selectbox(key="model").options
    assert any("MNIST1D · CNN · K=10" in o for o in options)
    assert any("Known-λ toy" in o for o in options)
    for key in ("epsilon", "gamma"):
        assert app.select_slider(key=key).value > 0
    assert app.text_input(key="nbeta").value == "auto"


def test_small_run_finishes_with_metric_and_status(app):
    configure(app, "toy:crossing:1", chains=4, draws=300, burnin=100)
    text = run_to_end(app)
    assert "finished" in text
    assert any(f"**{word}**" in text for word in ("ok", "warning"))
    lam = float(metric(app, "λ̂"))
    assert 0.2 < lam < 1.0  # true λ = 0.5; a short run lands in this range
    assert metric(app, "chains used") == "4 / 4"
    assert [b.label for b in app.get("download_button")] == ["Download traces (CSV)", "Download run (JSON)"]


def test_huge_step_size_shows_diverged(app):
    configure(app, "toy:crossing:1", epsilon=0.1, chains=2, draws=100, burnin=0)
    text = run_to_end(app)
    assert "**diverged**" in text
    assert any("diverged" in e.value for e in app.error)


def test_descending_chains_show_negative(app):
    """σ = 0 and γ = 0 turn SGLD into gradient descent from w*: the loss falls below
    L_n(w*) and λ̂ goes negative, which the page must say."""
    configure(app, "mnist1d_mlp_k10_s0", noise_scale=0.0, gamma=0.0, epsilon=1e-3, chains=2,
              draws=200, burnin=0)
    text = run_to_end(app)
    assert "**negative**" in text
    assert float(metric(app, "λ̂")) < 0


def test_invalid_nbeta_is_an_error_and_run_is_disabled(app):
    configure(app, "toy:crossing:2", nbeta="lots")
    assert any("nbeta='lots'" in e.value for e in app.error)
    assert app.button(key="run").disabled
    configure(app, "toy:crossing:2", nbeta="2x")
    assert not app.button(key="run").disabled and not app.error


def test_invalid_upload_shows_error_and_page_keeps_working(app):
    app.selectbox(key="model").set_value("upload").run()
    app.file_uploader(key="model_upload_files").set_value(
        [("evil.safetensors", b"\x00" * 64, "application/octet-stream"), ("evil.json", b"{not json", "application/json")]
    ).run()
    assert any("Cannot use this model" in e.value and "not valid JSON" in e.value for e in app.error)
    assert not app.exception
    configure(app, "toy:crossing:1", chains=2, draws=50, burnin=0)
    assert "finished" in run_to_end(app)


def test_stop_ends_the_run_with_a_partial_result(app):
    configure(app, "toy:crossing:1", chains=2, draws=20_000, burnin=0)
    app.button(key="run").click().run()
    time.sleep(1.0)
    app.run()
    app.button(key="stop").click().run()
    deadline = time.time() + 10
    while "stopped" not in status_text(app) and time.time() < deadline:
        time.sleep(0.3)
        app.run()
    assert "stopped (partial result)" in status_text(app)
    assert not app.button(key="run").disabled


def test_a_queued_run_shows_its_place_in_line_and_stop_leaves_the_queue(monkeypatch):
    """A server whose one slot is taken and two runs already waiting: Run shows "3rd in line —
    2 runs ahead of you"; Stop while queued ends it without it ever running."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import pages.common
    from tests.conftest import ROOT

    monkeypatch.setenv("LLC_MAX_RUNS", "1")
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"model": "toy:crossing:1", "draws": "300"})
    at.run()
    queue = pages.common.job_runner().queue  # the server-wide queue the page uses
    others = [queue.submit(f"other session {i}") for i in range(3)]
    try:
        assert queue.snapshot() == {"limit": 1, "running": 1, "waiting": 2}
        at.button(key="run").click().run()
        lines = [i.value for i in at.info if i.value.startswith("Queued:")]
        assert lines and lines[0].startswith("Queued: 3rd in line — 2 runs ahead of you")
        assert at.button(key="run").disabled and not at.button(key="stop").disabled
        at.button(key="stop").click().run()
        assert any(i.value.startswith("Stopped before it started (it left the queue)") for i in at.info)
        assert not at.exception and not at.button(key="run").disabled
        assert not any(i.value.startswith("Queued:") for i in at.info)
        assert queue.snapshot()["waiting"] == 2  # only this session's run left the line
    finally:
        for ticket in others:
            queue.release(ticket)
        st.cache_resource.clear()
