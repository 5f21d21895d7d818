"""`lwd pretrain` trains a flow-policy class of the user's own (``--policy.policy-class``)."""

import dataclasses
import json

import pytest

from lwd.configs.presets import DEBUG_ARCH
from lwd.configs.train import LoopConfig, SFTConfig
from lwd.data import LwdDataset
from lwd.pipeline.pretrain import pretrain
from lwd.policy.checkpoint import load_policy
from lwd.policy.examples import MLPFlowPolicy
from lwd.utils.errors import ConfigError

CLASS = "lwd.policy.examples:MLPFlowPolicy"


def _cfg(dataset, out, **arch):
    return SFTConfig(
        dataset=dataset, out=out, policy=dataclasses.replace(DEBUG_ARCH, **arch), lr=1e-3, warmup_steps=2,
        loop=LoopConfig(steps=6, batch_size=8, log_every=3, checkpoint_every=3),
    )  # fmt: skip


def test_pretrain_builds_the_named_class_with_the_data_interface(fake4_dataset, tmp_path):
    conf = tmp_path / "mlp.json"
    conf.write_text(json.dumps({"hidden": 24, "chunk_len": 3}))
    path = pretrain(_cfg(fake4_dataset, tmp_path / "sft", policy_class=CLASS, policy_config=str(conf)),
                    progress=False)  # fmt: skip
    policy, _, manifest = load_policy(path)
    assert isinstance(policy, MLPFlowPolicy) and manifest["policy_class"] == CLASS
    assert policy.config.hidden == 24 and policy.config.chunk_len == 3  # the file wins over --policy.*
    assert policy.config.flow_steps == DEBUG_ARCH.flow_steps  # unset in the file: from --policy.*
    data = LwdDataset.open(fake4_dataset).robot_spec  # the robot interface comes from the dataset
    assert (policy.config.state_dim, policy.config.action_dim) == (data.state_dim, data.action_dim)
    assert tuple(policy.config.cameras) == tuple(data.cameras)


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        ({"policy_class": "lwd.policy.examples:Nope"}, "policy-class"),
        ({"policy_class": "json:loads"}, "policy-class"),
        ({"policy_config": "x.json"}, "needs --policy.policy-class"),
        ({"policy_class": CLASS, "policy_config": "/no/such.json"}, "does not exist"),
    ],
)
def test_bad_policy_class_options_are_refused_before_any_work(fake4_dataset, tmp_path, arch, match):
    with pytest.raises(ConfigError, match=match):
        pretrain(_cfg(fake4_dataset, tmp_path / "sft", **arch), progress=False)
    assert not (tmp_path / "sft").exists()
