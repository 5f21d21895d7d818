"""lwd eval on the fake4 suite: outputs, seed disjointness, bad inputs."""

import json

import pytest

from lwd.configs.eval import EvalConfig
from lwd.data import LwdDataset
from lwd.eval.runner import evaluate, plan_episodes
from lwd.utils.errors import ConfigError, DataError


def test_eval_outputs(fake4_sft_policy, tmp_path):
    cfg = EvalConfig(
        checkpoint=fake4_sft_policy, suite="fake4", episodes_per_task=3, seeds=(0, 1), out=tmp_path / "e"
    )
    res = evaluate(cfg, progress=False)
    assert res["episodes"] == 4 * 3 * 2
    for t in ("reach-red", "reach-blue", "reach-green", "reach-yellow"):
        s = res["tasks"][t]
        assert s["episodes"] == 6 and 0.0 <= s["ci95"][0] <= s["success_rate"] <= s["ci95"][1] <= 1.0
    assert (tmp_path / "e" / "bars.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "e" / "table.md").read_text().startswith("| method | reach-red | reach-blue")
    lines = (tmp_path / "e" / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 24 and all("success" in json.loads(x) for x in lines)


def test_expert_is_near_perfect_in_field(tmp_path):
    res = evaluate(
        EvalConfig(expert=True, suite="fake4", episodes_per_task=5, out=tmp_path / "x", workers=1),
        progress=False,
    )
    assert res["average_success"] >= 0.9


def test_eval_seeds_disjoint_from_collection(fake4_dataset):
    coll = {r["seed"] for r in LwdDataset.open(fake4_dataset).episode_records}
    plan = plan_episodes(
        EvalConfig(suite="fake4", episodes_per_task=50, seeds=(0, 1, 2)), ["reach-red", "reach-blue"]
    )
    ev = [s for _, _, s in plan]
    assert len(set(ev)) == len(ev)
    assert not coll & set(ev)


def test_held_out_instructions_are_unseen(fake4_dataset):
    seen = {r["instruction"] for r in LwdDataset.open(fake4_dataset).episode_records}
    plan = plan_episodes(
        EvalConfig(suite="fake4", instructions="held_out", episodes_per_task=4), ["reach-red"]
    )
    assert {i for _, i, _ in plan}.isdisjoint(seen)


def test_bad_inputs(fake4_sft_policy, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        evaluate(EvalConfig(checkpoint=tmp_path / "nope", suite="fake4", out=tmp_path / "o"), progress=False)
    with pytest.raises(ConfigError, match="unknown task"):
        evaluate(
            EvalConfig(checkpoint=fake4_sft_policy, suite="fake4", tasks=("x",), out=tmp_path / "o"),
            progress=False,
        )
    with pytest.raises(DataError, match="was trained on tasks"):
        evaluate(EvalConfig(checkpoint=fake4_sft_policy, suite="mw8", out=tmp_path / "o"), progress=False)
    with pytest.raises(ConfigError, match="--checkpoint"):
        evaluate(EvalConfig(suite="fake4", out=tmp_path / "o"), progress=False)
    bad = tmp_path / "instr.json"
    bad.write_text(json.dumps({"reach-red": []}))
    with pytest.raises(ConfigError, match="non-empty list"):
        evaluate(
            EvalConfig(checkpoint=fake4_sft_policy, suite="fake4", instructions=str(bad), out=tmp_path / "o"),
            progress=False,
        )
    # a corrupt copy of the checkpoint is refused
    import shutil

    corrupt = tmp_path / "corrupt"
    shutil.copytree(fake4_sft_policy, corrupt)
    w = corrupt / "policy.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt"):
        evaluate(EvalConfig(checkpoint=corrupt, suite="fake4", out=tmp_path / "o"), progress=False)
    assert not (tmp_path / "o").exists()


def test_pooled_summaries_pool_the_episodes_of_several_evaluations(tmp_path):
    import json as _json
    from dataclasses import asdict

    from lwd.eval.metrics import EpisodeResult
    from lwd.eval.runner import pooled_summaries

    runs = {"seed0": [("a", True), ("a", False), ("b", True)], "seed1": [("a", True), ("b", False)]}
    for name, eps in runs.items():
        (tmp_path / name).mkdir()
        lines = [_json.dumps(asdict(EpisodeResult(t, i, ok, 10, 0.1))) for i, (t, ok) in enumerate(eps)]
        (tmp_path / name / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    out = pooled_summaries([tmp_path / "seed0", tmp_path / "seed1"])
    assert (out["a"].episodes, out["a"].successes) == (3, 2)
    assert (out["b"].episodes, out["b"].successes) == (2, 1)


def test_paired_comparison_counts_discordant_episodes_and_tests_them(tmp_path):
    import json as _json
    from dataclasses import asdict

    from lwd.eval.metrics import EpisodeResult
    from lwd.eval.runner import paired_comparison
    from lwd.eval.stats import mcnemar_exact
    from lwd.utils.errors import DataError

    a = [("t", 0, True), ("t", 1, True), ("t", 2, False), ("u", 0, True), ("u", 9, True)]
    b = [("t", 0, True), ("t", 1, False), ("t", 2, True), ("u", 0, False), ("v", 0, True)]
    for name, eps in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        lines = [_json.dumps(asdict(EpisodeResult(t, s, ok, 10, 0.1))) for t, s, ok in eps]
        (tmp_path / name / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    out = paired_comparison(tmp_path / "a", tmp_path / "b")
    # paired: (t,0) both, (t,1) a only, (t,2) b only, (u,0) a only; (u,9) and (v,0) unpaired
    assert out["episodes"] == 4 and (out["a_only"], out["b_only"]) == (2, 1)
    assert out["success_a"] == 0.75 and out["success_b"] == 0.5
    assert out["p_value"] == mcnemar_exact(2, 1) == 1.0
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "episodes.jsonl").write_text(_json.dumps(asdict(EpisodeResult("w", 0, True, 1, 0.1))) + "\n")
    with pytest.raises(DataError, match="share no episodes"):
        paired_comparison(tmp_path / "a", tmp_path / "c")
    with pytest.raises(DataError, match="no episodes.jsonl"):
        paired_comparison(tmp_path / "a", tmp_path / "missing")
    assert "substep_episodes" not in out  # no chained task


def test_paired_comparison_tests_substep_scores_of_chained_tasks(tmp_path):
    from dataclasses import asdict

    from lwd.eval.metrics import EpisodeResult
    from lwd.eval.runner import paired_comparison
    from lwd.eval.stats import paired_signed_rank

    a = [EpisodeResult("chain", s, s == 0, 9, 0.1, substep=x) for s, x in enumerate([1.0, 0.75, 0.5, 0.5])]
    a.append(EpisodeResult("atomic", 0, True, 9, 0.1))
    b = [EpisodeResult("chain", s, False, 9, 0.1, substep=x) for s, x in enumerate([0.5, 0.25, 0.5, 0.0])]
    b.append(EpisodeResult("atomic", 0, False, 9, 0.1))
    for name, eps in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "episodes.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in eps))
    out = paired_comparison(tmp_path / "a", tmp_path / "b")
    assert out["episodes"] == 5 and out["substep_episodes"] == 4
    assert out["substep_a"] == pytest.approx(0.6875) and out["substep_b"] == pytest.approx(0.3125)
    assert out["substep_p_value"] == paired_signed_rank([1.0, 0.75, 0.5, 0.5], [0.5, 0.25, 0.5, 0.0])
