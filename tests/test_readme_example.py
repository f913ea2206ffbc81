"""The README's "Use it on your own model" example, extracted from README.md and run as written,
so the documented usage cannot rot."""

import math
import re

from tests.conftest import ROOT

SECTION = "## Use it on your own model"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section must hold exactly one python block"
    return blocks[0]


def test_the_readme_example_runs_and_estimates(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # it writes its figure to the working directory
    namespace = {"__name__": "__readme__"}
    exec(compile(readme_example(), "README.md (Use it on your own model)", "exec"), namespace)
    result = namespace["result"]
    assert result.completed and math.isfinite(result.lambda_hat) and result.lambda_hat > 0
    assert result.status in ("ok", "warning") and result.lambda_hat_se > 0
    out = capsys.readouterr().out
    assert f"λ̂ = {result.lambda_hat:.2f}" in out and f"status: {result.status}" in out
    frame = namespace["traces"]
    assert set(frame.columns) >= {"chain", "step", "loss", "lambda_hat"} and frame["chain"].nunique() == 4
    assert (tmp_path / "llc_traces.html").stat().st_size > 10_000
