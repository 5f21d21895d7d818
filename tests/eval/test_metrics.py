import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwd.eval.metrics import (
    EpisodeResult,
    average_substep,
    average_success,
    summaries_to_json,
    summarize,
    wilson_interval,
)
from lwd.eval.report import bar_chart, markdown_table


def test_wilson_known_value():
    # 8 of 10: Wilson 95% interval is (0.4902, 0.9433) (standard textbook value).
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_point_estimate(kn):
    k, n = kn
    lo, hi = wilson_interval(k, n)
    p = k / n
    assert 0.0 <= lo <= p + 1e-12
    assert p <= hi + 1e-12
    assert hi <= 1.0


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_summarize_and_table(tmp_path):
    rs = [EpisodeResult("a", i, i % 2 == 0, 10, 0.5, interventions=2) for i in range(4)]
    rs += [EpisodeResult("b", i, True, 20, 1.0) for i in range(2)]
    s = summarize(rs)
    assert s["a"].success_rate == 0.5 and s["a"].episodes == 4
    assert s["a"].intervention_rate == pytest.approx(0.2)
    assert s["b"].mean_length == 20
    assert math.isclose(average_success(s), 0.75)
    table = markdown_table({"sft": s})
    assert "| sft | 0.50 | 1.00 | 0.75 |" in table
    png = tmp_path / "bars.png"
    bar_chart({"sft": s}, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_substep_scores_are_averaged_per_chained_task_and_tabulated():
    rs = [EpisodeResult("chain", i, i == 0, 100, 1.0, substep=x) for i, x in enumerate([1.0, 0.5, 0.25, 0.25])]
    rs += [EpisodeResult("atomic", i, True, 10, 0.1) for i in range(2)]
    s = summarize(rs)
    assert s["chain"].mean_substep == pytest.approx(0.5) and s["atomic"].mean_substep is None
    assert average_substep(s) == pytest.approx(0.5)
    assert summaries_to_json(s)["average_substep"] == pytest.approx(0.5)
    table = markdown_table({"sft": s, "lwd": {"chain": s["chain"]}})
    assert "| method | chain | avg |" in table  # only the chained task gets a sub-step column
    assert "| sft | 0.50 | 0.50 |" in table and "| lwd | 0.50 | 0.50 |" in table
    assert average_substep(summarize(rs[4:])) is None
    assert "Sub-step" not in markdown_table({"sft": summarize(rs[4:])})
