"""Instruction encoders: hashing stand-in, cache, registry, and MiniLM offline with paraphrases."""

from __future__ import annotations

import numpy as np
import pytest

from lwd.policy.language import HashingTextEncoder, TextEncoder, get_text_encoder
from lwd.utils.errors import ConfigError


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_hashing_encoder_is_deterministic_normalised_and_cached() -> None:
    enc = HashingTextEncoder()
    assert isinstance(enc, TextEncoder) and enc.dim == 384
    e = enc.encode(["pick up the red cube", "pick up the red cube", "open the drawer"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(e[0], e[1])
    assert np.array_equal(HashingTextEncoder().encode(["open the drawer"])[0], e[2])  # across instances
    assert enc.cached("open the drawer") and not enc.cached("close the drawer")
    assert cos(e[0], enc.encode(["pick the red cube up"])[0]) > cos(e[0], e[2])
    assert enc.encode([]).shape == (0, 384)


def test_registry_is_single_instance_and_rejects_unknown() -> None:
    assert get_text_encoder("hashing") is get_text_encoder("hashing")
    with pytest.raises(ConfigError, match="unknown text encoder"):
        get_text_encoder("bert-huge")


def test_minilm_offline_embeds_unseen_paraphrases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = get_text_encoder("minilm")
    assert enc is get_text_encoder("minilm") and enc.dim == 384
    seen = ["pick up the red block and put it in the bin", "open the top drawer"]
    enc.precompute(seen)
    assert all(enc.cached(s) for s in seen)
    para = "put the red block into the bin"
    assert not enc.cached(para)
    e_seen = enc.encode(seen)
    e_para = enc.encode([para])[0]
    assert enc.cached(para)
    assert e_seen.shape == (2, 384)
    assert np.allclose(np.linalg.norm(e_seen, axis=1), 1.0, atol=1e-4)
    # The paraphrase lands near its own task, not the other one.
    assert cos(e_para, e_seen[0]) > 0.7
    assert cos(e_para, e_seen[0]) > cos(e_para, e_seen[1]) + 0.3
