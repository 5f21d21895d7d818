"""The online learner's algorithm choice: LWD and the baselines built from an offline stage or a policy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lwd.algorithms.batching import module_device, to_tensors
from lwd.algorithms.hg_dagger import HGDAggerAlgorithm
from lwd.algorithms.lwd import LWDAlgorithm
from lwd.algorithms.recap import RECAPAlgorithm
from lwd.algorithms.registry import ALGORITHMS, ONLINE_ALGORITHMS
from lwd.configs.online import LearnerSettings
from lwd.configs.presets import OFFLINE
from lwd.configs.train import LoopConfig
from lwd.data import LwdDataset, ReplayBuffer
from lwd.data.filters import DEMOS_AND_INTERVENTIONS
from lwd.fleet.learner.algorithms import build_online_algorithm, place_algorithm
from lwd.pipeline.train_offline import train_offline
from lwd.policy.checkpoint import load_policy
from lwd.utils.errors import ConfigError
from lwd.utils.run_state import StepCheckpoints

EXPECTED = {"lwd": LWDAlgorithm, "lwd-const-tau": LWDAlgorithm, "iql-qam": LWDAlgorithm, "hg-dagger": HGDAggerAlgorithm,
            "recap": RECAPAlgorithm}


@pytest.fixture(scope="module")
def offline_stage(fake4_dataset, fake4_sft_policy, tmp_path_factory):
    out = tmp_path_factory.mktemp("offline_stage") / "offline_lwd"
    cfg = dataclasses.replace(
        OFFLINE["debug"], dataset=fake4_dataset, init=fake4_sft_policy, out=out,
        loop=LoopConfig(steps=4, batch_size=16, log_every=2, checkpoint_every=2, threads=1),
    )  # fmt: skip
    train_offline(cfg, progress=False)
    return out


@pytest.fixture(scope="module")
def batch(fake4_dataset, fake4_sft_policy):
    buf = ReplayBuffer(balance="task")
    buf.add_episodes(LwdDataset.open(fake4_dataset).iter_episodes(), online=False)
    chunk = load_policy(fake4_sft_policy)[0].config.chunk_len
    rl = buf.sample(32, np.random.default_rng(0), chunk, 0.99)
    imitation = buf.sample(32, np.random.default_rng(1), chunk, 0.99, filt=DEMOS_AND_INTERVENTIONS)
    return rl, imitation


def _update(algo, batch) -> dict:
    """One update with the batches ``algo.needs`` asks for (as the learner samples them)."""
    rl, imitation = batch
    return algo.update(rl if algo.needs.rl else None, imitation if algo.needs.imitation else None)


def _weights(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("algorithm,reference", [(a, "frozen") for a in ONLINE_ALGORITHMS] + [("lwd", "bc")])
def test_each_algorithm_builds_from_the_offline_stage_updates_and_publishes_a_plain_policy(
    algorithm, reference, offline_stage, batch
):
    s = LearnerSettings(algorithm=algorithm, policy_lr=1e-3, reference=reference)
    algo, stats, version = build_online_algorithm(offline_stage, s)
    assert isinstance(algo, EXPECTED[algorithm])
    stage_policy, _, manifest = load_policy(offline_stage / "policy")
    assert version == int(manifest["version"])
    before = _weights(algo.acting_policy())
    # the policy starts from the stage's trained policy, not from the SFT weights
    for k, v in stage_policy.state_dict().items():
        torch.testing.assert_close(before[k], v)
    metrics = _update(algo, batch)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    after = algo.acting_policy()
    assert type(after).__name__ == "FlowPolicy"
    assert set(after.state_dict()) == set(before)
    moved = max(float((after.state_dict()[k] - before[k]).abs().max()) for k in before)
    assert moved > 0.0  # the batch holds demos, so even HG-DAgger's selection is non-empty


def test_lwd_restores_the_stage_critic_and_value_but_iql_qam_starts_them_fresh(offline_stage):
    _, state = StepCheckpoints(offline_stage / "checkpoints").latest()
    stage_learner = state["algorithm"]["learner"]
    lwd, _, _ = build_online_algorithm(offline_stage, LearnerSettings(algorithm="lwd"))
    restored = lwd.value_critic.state_dict()
    key = next(k for k in stage_learner if isinstance(stage_learner[k], dict))
    for k, v in stage_learner[key].items():
        if isinstance(v, torch.Tensor):
            torch.testing.assert_close(restored[key][k], v)
    iql, _, _ = build_online_algorithm(offline_stage, LearnerSettings(algorithm="iql-qam"))
    # the reference policy is still the stage's pi_ref (the SFT policy), not the trained policy
    torch.testing.assert_close(
        _weights(iql.reference)["action_expert.out.weight"],
        state["algorithm"]["reference"]["action_expert.out.weight"],
    )


def test_one_name_per_algorithm_offline_and_online(offline_stage):
    """The registry is the one list: offline and online accept the same names for the same thing,
    the old offline name ``iql`` is refused with its new one, and ``lwd-const-tau`` runs online with
    alpha 0 (before, only offline had that name)."""
    from lwd.algorithms.registry import OFFLINE_ALGORITHMS

    assert set(OFFLINE_ALGORITHMS) <= set(ONLINE_ALGORITHMS) == set(ALGORITHMS)
    with pytest.raises(ConfigError, match="'iql' is now called 'iql-qam'"):
        dataclasses.replace(OFFLINE["debug"], algorithm="iql").validate()
    with pytest.raises(ConfigError, match="'iql' is now called 'iql-qam'"):
        LearnerSettings(algorithm="iql").validate()
    const, _, _ = build_online_algorithm(offline_stage, LearnerSettings(algorithm="lwd-const-tau", alpha=0.3))
    lwd, _, _ = build_online_algorithm(offline_stage, LearnerSettings(algorithm="lwd", alpha=0.3))
    assert const.value_critic.cfg.alpha == 0.0 and lwd.value_critic.cfg.alpha == 0.3


def test_recap_builds_from_a_plain_policy_checkpoint(fake4_sft_policy):
    algo, _, _ = build_online_algorithm(fake4_sft_policy, LearnerSettings(algorithm="recap"))
    sft, _, _ = load_policy(fake4_sft_policy)
    folded = algo.acting_policy()  # zero-initialised indicator embedding: folding changes nothing yet
    for k, v in sft.state_dict().items():
        torch.testing.assert_close(folded.state_dict()[k], v)


def test_unknown_algorithm_is_a_config_error(fake4_sft_policy):
    with pytest.raises(ConfigError, match="unknown learner algorithm 'dagger'.*hg-dagger"):
        build_online_algorithm(fake4_sft_policy, LearnerSettings(algorithm="dagger"))


def test_policy_every_reaches_the_learner_and_is_validated(offline_stage):
    algo, _, _ = build_online_algorithm(offline_stage, LearnerSettings(policy_every=4))
    assert algo.cfg.policy_every == 4 and [algo.policy_due(s) for s in range(5)] == [True, False, False, False, True]
    with pytest.raises(ConfigError, match="policy_every"):
        build_online_algorithm(offline_stage, LearnerSettings(policy_every=0))


@pytest.mark.parametrize("algorithm", ONLINE_ALGORITHMS)
def test_place_algorithm_moves_every_network_tensor_and_optimiser_state(algorithm, offline_stage, batch):
    """The meta device stands in for a GPU (this machine has none): after ``place_algorithm`` nothing
    of the algorithm is left on the CPU, and its batches are built on its device."""
    reference = "bc" if algorithm == "lwd" else "frozen"  # the BC-trained reference copy moves too
    algo, _, _ = build_online_algorithm(offline_stage, LearnerSettings(algorithm=algorithm, reference=reference))
    _update(algo, batch)  # optimiser moments exist now (on the CPU)
    place_algorithm(algo, "meta")
    owners = [algo, *([algo.value_critic] if hasattr(algo, "value_critic") else [])]
    modules = [v for o in owners for v in vars(o).values() if isinstance(v, torch.nn.Module)]
    assert modules and all(t.device.type == "meta" for m in modules for t in [*m.parameters(), *m.buffers()])
    tensors = [v for o in owners for v in vars(o).values() if isinstance(v, torch.Tensor)]  # DIVL's atoms
    assert all(t.device.type == "meta" for t in tensors)
    assert (ALGORITHMS[algorithm].value == "divl") == bool(tensors)
    # CPU -> meta gives new parameter objects: optimisers and parameter lists follow the modules
    current = {id(p) for m in modules for p in m.parameters()}
    lists = [v for o in owners for v in vars(o).values() if isinstance(v, list) and v]
    assert all(id(p) in current for v in lists for p in v if isinstance(p, torch.nn.Parameter))
    for opt in _optimisers(algo):
        assert opt.state and all(id(p) in current for g in opt.param_groups for p in g["params"])
        for p, st in opt.state.items():
            assert id(p) in current
            assert all(v.device.type == "meta" for k, v in st.items() if k != "step")
    t = to_tensors(batch[0], algo.text_encoder, algo.norm_stats, module_device(algo.acting_policy()))
    leaves = [t.actions, t.mask, t.reward, t.discount]
    for obs in (t.obs, t.next_obs):
        leaves += [obs["state"], obs["instruction_emb"], *obs["images"].values()]
    assert all(x.device.type == "meta" for x in leaves)


def _optimisers(algo) -> list:
    owners = [algo, *([algo.value_critic] if hasattr(algo, "value_critic") else [])]
    return [v for o in owners for v in vars(o).values() if isinstance(v, torch.optim.Optimizer)]


def test_offline_and_online_configs_turn_bad_schedule_values_into_config_errors():
    from lwd.fleet.learner.algorithms import online_lwd_config
    from lwd.pipeline.train_offline import lwd_config

    with pytest.raises(ConfigError, match="policy_every"):
        lwd_config(dataclasses.replace(OFFLINE["debug"], policy_every=0))
    with pytest.raises(ConfigError, match="policy_delay_steps"):
        lwd_config(dataclasses.replace(OFFLINE["debug"], policy_delay_steps=-1))
    with pytest.raises(ConfigError, match="policy_every"):
        online_lwd_config(LearnerSettings(policy_every=0))
    assert lwd_config(dataclasses.replace(OFFLINE["debug"], policy_every=3)).policy_every == 3


def test_reference_data_settings_reach_the_algorithm_and_are_validated(offline_stage):
    from lwd.data.filters import DEMOS_INTERVENTIONS_AND_SUCCESSES

    s = LearnerSettings(reference="bc", reference_successes=True, imitation_online_fraction=0.75)
    s.validate()
    algo, _, _ = build_online_algorithm(offline_stage, s)
    assert algo.needs.imitation == DEMOS_INTERVENTIONS_AND_SUCCESSES
    with pytest.raises(ConfigError, match="--learner.reference-successes needs --learner.reference bc"):
        LearnerSettings(reference="frozen", reference_successes=True).validate()
    with pytest.raises(ConfigError, match="imitation-online-fraction"):
        LearnerSettings(imitation_online_fraction=1.5).validate()


def test_reference_contrast_settings_reach_the_algorithm_and_are_validated(offline_stage):
    from lwd.data.filters import DEMOS_AND_INTERVENTIONS

    s = LearnerSettings(reference="frozen", reference_contrast_weight=0.5, reference_contrast_slope=0.2)
    s.validate()
    algo, _, _ = build_online_algorithm(offline_stage, s)
    assert (algo.cfg.reference_contrast_weight, algo.cfg.reference_contrast_slope) == (0.5, 0.2)
    assert algo.needs.imitation == DEMOS_AND_INTERVENTIONS  # the contrast's states, even with a frozen pi_ref
    with pytest.raises(ConfigError, match="--learner.reference-contrast-weight"):
        LearnerSettings(reference_contrast_weight=-1.0).validate()
    with pytest.raises(ConfigError, match="--learner.reference-contrast-slope"):
        LearnerSettings(reference_contrast_slope=float("inf")).validate()
