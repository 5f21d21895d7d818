"""Builds LeRobot's real SmolVLA core (``VLAFlowMatching``, lerobot 0.4.4) at a tiny size with random
weights, offline, for test_lerobot_real.py (in the LeRobot environment, ``make lerobot-env``).

Only the two hub look-ups in ``SmolVLMWithExpertModel.__init__`` (``AutoConfig`` and
``AutoProcessor.from_pretrained``) are replaced, by a tiny ``SmolVLMConfig`` and a tokenizer stand-in
carrying the two special-token ids lerobot reads.

torchvision: PyPI's wheels are CUDA builds whose C++ ops do not load next to a CPU torch, and
``import torchvision`` then fails registering fake kernels for two of them (``nms``, ``qnms``); where
that is so, the two schemas are declared first, so the pure-Python parts import (transformers imports
torchvision whenever it is installed). Where torchvision is not installed at all, import-time
stand-ins are installed for it: lerobot imports it in dataset and processor modules that this model
does not use. Runs in the LeRobot environment (tests/policy/lerobot_model_worker.py), not under lwd's.
"""

import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import torch

_KEEP: list = []  # a torch.library.Library drops its definitions when collected


def _torchvision_usable() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        return False
    libs = sorted(Path(spec.submodule_search_locations[0]).glob("_C.*so"))
    try:
        torch.ops.load_library(str(libs[0]))  # what ``import torchvision`` does; a no-op if it did already
    except (IndexError, ImportError, OSError):  # ops missing: declare the two it registers fakes for
        lib = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(lib)
    import torchvision  # noqa: F401

    return True


class _Any(types.ModuleType):
    def __getattr__(self, name):  # any attribute: a stand-in class (only touched at import time)
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *a, **k: None})


for _name in (
    ()
    if _torchvision_usable()
    else (
        "torchvision",
        "torchvision.transforms",
        "torchvision.transforms.v2",
        "torchvision.transforms.functional",
        "torchvision.transforms.v2.functional",
        "torchvision.io",
        "torchvision.models",
    )
):
    _m = _Any(_name)
    _m.__spec__ = importlib.machinery.ModuleSpec(_name, None, is_package=True)
    _m.__path__ = []
    sys.modules.setdefault(_name, _m)
    if "." in _name:
        _parent, _, _child = _name.rpartition(".")
        setattr(sys.modules[_parent], _child, sys.modules[_name])

import lerobot.policies.smolvla.smolvlm_with_expert as swe  # noqa: E402
from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig  # noqa: E402
from lerobot.policies.smolvla.modeling_smolvla import VLAFlowMatching  # noqa: E402
from transformers import SmolVLMConfig  # noqa: E402

VOCAB = 128


def tiny_vlm_config() -> SmolVLMConfig:
    return SmolVLMConfig(
        text_config=dict(
            model_type="llama",
            vocab_size=VOCAB,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            max_position_embeddings=256,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        scale_factor=2,
        vocab_size=VOCAB,
        image_token_id=VOCAB - 1,
    )


class _Tok:
    fake_image_token_id = VOCAB - 3
    global_image_token_id = VOCAB - 2


def install_offline_loaders() -> None:
    swe.AutoConfig = types.SimpleNamespace(from_pretrained=lambda *_a, **_k: tiny_vlm_config())
    swe.AutoProcessor = types.SimpleNamespace(
        from_pretrained=lambda *_a, **_k: types.SimpleNamespace(tokenizer=_Tok())
    )


def tiny_smolvla(chunk: int = 4, max_dim: int = 8, seed: int = 0) -> VLAFlowMatching:
    install_offline_loaders()
    torch.manual_seed(seed)
    cfg = SmolVLAConfig(
        chunk_size=chunk,
        n_action_steps=chunk,
        max_state_dim=max_dim,
        max_action_dim=max_dim,
        load_vlm_weights=False,
        num_vlm_layers=2,
        num_expert_layers=-1,
        self_attn_every_n_layers=2,
        expert_width_multiplier=0.5,
        num_steps=4,
        device="cpu",
        resize_imgs_with_padding=(32, 32),
    )
    return VLAFlowMatching(cfg).float()
