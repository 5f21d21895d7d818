"""The online learner's algorithm: LWD or one of the baselines, built from the stage the loop starts at.

``LearnerSettings.algorithm`` selects what the learner process runs on the same offline + online
replay mix (algorithms.md section 6):

- ``lwd``: DIVL value/critic + QAM extraction (the method); ``lwd-const-tau`` the same with alpha = 0;
- ``iql-qam``: scalar expectile (IQL) value + QAM (the DIVL ablation);
- ``hg-dagger``: flow-matching BC on demonstrations plus human-intervention segments;
- ``recap``: DIVL value/critic + advantage-conditioned BC (indicator folded in for publishing).

What each name is made of comes from :data:`lwd.algorithms.registry.ALGORITHMS`.

Starting point (``init``): an offline stage directory (``checkpoints/latest.json``, key
``"algorithm"``) or a policy checkpoint. The policy always starts from the stage's trained policy; the
reference policy (QAM's pi_ref) from the stage's reference when it has one. Value and critic are
restored from the stage when they are of the same kind (a DIVL stage feeds ``lwd`` and ``recap``, an
IQL stage feeds ``iql-qam``), else they start fresh. Nothing here does I/O beyond reading ``init``.

Device: :func:`place_algorithm` moves an algorithm's networks (and plain tensor attributes such as
DIVL's atoms) to the learner's device; each algorithm's ``update`` then puts its batch tensors on
its policy's device. Random draws stay on CPU generators (the same numbers on every device, and
the generator state in a checkpoint is a CPU tensor).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import torch

from lwd.algorithms.base import Algorithm, BatchNeeds
from lwd.algorithms.divl import DIVLConfig
from lwd.algorithms.hg_dagger import HGDAggerAlgorithm, HGDAggerConfig
from lwd.algorithms.iql import IQLConfig
from lwd.algorithms.lwd import LWDAlgorithm, LWDConfig, build_lwd_algorithm
from lwd.algorithms.qam import QAMConfig
from lwd.algorithms.recap import RECAPAlgorithm, RECAPConfig
from lwd.algorithms.registry import ALGORITHMS, ONLINE_ALGORITHMS
from lwd.configs.online import LearnerSettings
from lwd.data import ReplayMixer
from lwd.data.batch import TransitionBatch
from lwd.policy.checkpoint import load_policy
from lwd.policy.language import get_text_encoder
from lwd.utils.errors import ConfigError
from lwd.utils.io import read_json
from lwd.utils.run_state import StepCheckpoints

log = logging.getLogger(__name__)


def sample_batches(
    needs: BatchNeeds,
    mixer: ReplayMixer,
    s: LearnerSettings,
    rng,
    chunk_len: int,
    batch_size: int | None = None,
    n_step_by_task: dict[str, int] | None = None,
) -> tuple[TransitionBatch | None, TransitionBatch | None, TransitionBatch | None]:
    """The batches an algorithm's ``update(batch, imitation, contrast)`` asks for (``needs``), each of
    ``batch_size`` rows (default ``s.batch_size``): the RL batch offline:online mixed; the imitation
    batch(es) from the transitions ``needs.imitation`` makes eligible (demos offline, chunks that start
    on a human step online, ``s.imitation_online_fraction`` online); the contrast batch of take-overs
    while the online buffer holds any with the rejected proposal, else None."""
    b = s.batch_size if batch_size is None else batch_size
    batch = mixer.sample(b, rng, chunk_len, s.gamma, n_step_by_task) if needs.rl else None
    imitation = None
    if needs.imitation is not None:
        imitation = mixer.sample(b * needs.imitation_batches, rng, chunk_len, s.gamma, None, needs.imitation,
                                 needs.imitation, s.imitation_online_fraction)  # fmt: skip
    contrast = None
    if needs.contrast and mixer.online.num_rejections:
        contrast = mixer.online.sample_rejections(b, rng, chunk_len, s.gamma)
    return batch, imitation, contrast


def online_lwd_config(s: LearnerSettings) -> LWDConfig:
    """Online DIVL/QAM settings: tau_base (0.9), constant learning rates, QAM temperature."""
    try:
        alpha = 0.0 if ALGORITHMS[s.algorithm].constant_tau else s.alpha
        return LWDConfig(divl=DIVLConfig(tau_base=s.tau_base, alpha=alpha, lr=s.critic_lr),
                         qam=QAMConfig(lam=s.lam, flow_steps=s.qam_flow_steps), qam_batch=s.qam_batch,
                         policy_lr=s.policy_lr, total_steps=0,
                         policy_every=s.policy_every, reference=s.reference, reference_lr=s.reference_lr,
                         reference_ema=s.reference_ema, track_reference=s.track_reference,
                         reference_steps=s.reference_steps, reference_successes=s.reference_successes,
                         contrast_weight=s.contrast_weight, contrast_margin=s.contrast_margin,
                         reference_contrast_weight=s.reference_contrast_weight,
                         reference_contrast_slope=s.reference_contrast_slope)  # fmt: skip
    except ValueError as e:  # the bounds live in LWDConfig
        raise ConfigError(f"learner settings: {e}") from e


def _stage_state(init: Path) -> tuple[Path, dict | None]:
    """(policy checkpoint dir, offline learner state or None) of ``init``."""
    if not (init / "checkpoints" / "latest.json").is_file():
        return init, None
    policy_dir = init / "policy"
    if not (policy_dir / "manifest.json").is_file():
        policy_dir = Path(read_json(init / "config.json")["init"])
    found = StepCheckpoints(init / "checkpoints").latest()
    state = found[1].get("algorithm") if found else None
    if not isinstance(state, dict) or "policy" not in state:
        raise ConfigError(f"{init}: not an offline learner stage (no 'algorithm' state with a policy)")
    return policy_dir, state


def _restore(algo: LWDAlgorithm, state: dict, init: Path) -> None:
    """Load the stage's full state if compatible, else only its policy and reference weights."""
    try:
        algo.load_state_dict(state)
        return
    except (KeyError, RuntimeError) as e:
        log.warning("%s: value/critic not reusable for this algorithm (%s); they start fresh", init, e)
    try:
        algo.policy.load_state_dict(state["policy"])
        if "reference" in state:
            algo.reference.load_state_dict(state["reference"])
    except (KeyError, RuntimeError) as e:
        raise ConfigError(f"{init}: stage policy does not fit the policy checkpoint: {e}") from e


def build_online_algorithm(init: str | Path, s: LearnerSettings) -> tuple[Algorithm, dict, int]:
    """(algorithm, norm stats, init policy version) for ``s.algorithm`` starting at ``init``."""
    if s.algorithm not in ONLINE_ALGORITHMS:
        raise ConfigError(f"unknown learner algorithm {s.algorithm!r}; valid: {', '.join(ONLINE_ALGORITHMS)}")
    init = Path(init)
    policy_dir, state = _stage_state(init)
    policy, stats, manifest = load_policy(policy_dir)
    enc = get_text_encoder(policy.config.text_encoder)
    info = ALGORITHMS[s.algorithm]
    base = build_lwd_algorithm(policy.train(), enc, stats, online_lwd_config(s), value=info.value or "divl",
                               iql=IQLConfig(lr=s.critic_lr), seed=s.seed)  # fmt: skip
    if state is not None:
        _restore(base, state, init)
        for g in base.policy_opt.param_groups:  # online runs at the configured constant rates
            g["lr"] = s.policy_lr
    version = int(manifest["version"])
    if info.policy == "qam":
        return base, stats, version
    if info.policy == "bc":
        return (
            HGDAggerAlgorithm(base.policy, enc, stats, HGDAggerConfig(lr=s.policy_lr), seed=s.seed),
            stats,
            version,
        )
    return (
        RECAPAlgorithm(base.policy, base.value_critic, enc, stats, RECAPConfig(lr=s.policy_lr), seed=s.seed),
        stats,
        version,
    )


def _owners(algo: Algorithm) -> list[object]:
    learner = getattr(algo, "value_critic", None)
    return [algo] if learner is None else [algo, learner]


def place_algorithm(algo: Algorithm, device: torch.device | str) -> Algorithm:
    """Move ``algo`` to ``device`` in place and return it: every ``nn.Module`` and tensor attribute of
    the algorithm and of its value/critic updater (``algo.value_critic``, if any), and their optimisers.

    ``Module.to`` may replace parameter objects (it does for some device pairs), so the optimisers'
    parameter groups and states and every attribute that is a list of parameters (e.g. what is
    clipped) are pointed at the modules' new parameters; optimiser moments move to ``device``
    (Adam's ``step`` counter stays on the CPU, as torch keeps it). A checkpoint loaded afterwards
    lands on the device too. Checkpoints stay device-independent: they are written as CPU tensors
    (``lwd.utils.state_io``), and so are published policies (``lwd.policy.checkpoint.save_policy``).
    """
    device = torch.device(device)
    new: dict[int, tuple[torch.nn.Parameter, torch.nn.Parameter]] = {}  # id(old) -> (old, new); keeps old alive
    for obj in _owners(algo):
        for name, value in list(vars(obj).items()):
            if isinstance(value, torch.nn.Module):
                before = list(value.parameters())
                value.to(device)
                new.update({id(p): (p, q) for p, q in zip(before, value.parameters(), strict=True)})
            elif isinstance(value, torch.Tensor):
                setattr(obj, name, value.to(device))

    def swap(p):
        return new[id(p)][1] if id(p) in new else p

    for obj in _owners(algo):
        for name, value in list(vars(obj).items()):
            if isinstance(value, torch.optim.Optimizer):
                for group in value.param_groups:
                    group["params"] = [swap(p) for p in group["params"]]
                moved = {
                    swap(p): {k: v.to(device) if isinstance(v, torch.Tensor) and k != "step" else v
                              for k, v in st.items()}
                    for p, st in value.state.items()
                }  # fmt: skip
                value.state = defaultdict(dict, moved)
            elif isinstance(value, list) and value and all(isinstance(p, torch.nn.Parameter) for p in value):
                setattr(obj, name, [swap(p) for p in value])
    return algo
