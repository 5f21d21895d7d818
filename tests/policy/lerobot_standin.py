"""A small stand-in with the method signatures of LeRobot's SmolVLA core (lerobot 0.4.4,
``lerobot.policies.smolvla.modeling_smolvla.VLAFlowMatching``), for testing the adapter where lerobot
is not installed: ``embed_prefix``, ``vlm_with_expert.forward(..., fill_kv_cache=True)`` returning a
``{layer: {"key_states", "value_states"}}`` cache of [b, L, kv_heads, head_dim], ``denoise_step`` in
LeRobot's time convention (t = 1 noise, t = 0 action, u = noise - action) and ``sample_actions``
integrating from t = 1 to t = 0 as LeRobot does. The network itself is a toy."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor, nn

LAYERS, HEADS, HEAD_DIM, WIDTH = 2, 2, 4, 8


class _VLMWithExpert(nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.num_vlm_layers, self.num_key_value_heads = LAYERS, HEADS
        self.config = SimpleNamespace(
            text_config=SimpleNamespace(head_dim=HEAD_DIM, hidden_size=WIDTH, num_attention_heads=2)
        )
        self.embed = nn.Embedding(vocab, WIDTH)
        self.kv = nn.ModuleList(nn.Linear(WIDTH, 2 * HEADS * HEAD_DIM) for _ in range(LAYERS))
        self.lm_expert = nn.Linear(HEADS * HEAD_DIM + WIDTH, WIDTH)

    def forward(self, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache, fill_kv_cache):
        prefix = inputs_embeds[0]  # [b, L, WIDTH]
        b, length, _ = prefix.shape
        kv = {}
        for i, proj in enumerate(self.kv):
            k, v = proj(prefix).chunk(2, dim=-1)
            kv[i] = {
                "key_states": k.reshape(b, length, HEADS, HEAD_DIM),
                "value_states": v.reshape(b, length, HEADS, HEAD_DIM),
            }
        return [prefix, None], kv


class StandInVLAFlowMatching(nn.Module):
    """What the adapter calls, with LeRobot's names and argument order."""

    def __init__(
        self,
        chunk_size: int = 4,
        max_state_dim: int = 6,
        max_action_dim: int = 3,
        vocab: int = 100,
        num_steps: int = 4,
    ) -> None:
        super().__init__()
        self.config = SimpleNamespace(
            chunk_size=chunk_size,
            max_state_dim=max_state_dim,
            max_action_dim=max_action_dim,
            num_steps=num_steps,
        )
        self.vlm_with_expert = _VLMWithExpert(vocab)
        self.state_proj = nn.Linear(max_state_dim, WIDTH)
        self.img_proj = nn.Linear(3, WIDTH)
        self.action_in_proj = nn.Linear(max_action_dim, WIDTH)
        self.action_time_mlp_in = nn.Linear(2 * WIDTH, WIDTH)
        self.action_time_mlp_out = nn.Linear(WIDTH, WIDTH)
        self.action_out_proj = nn.Linear(WIDTH, max_action_dim)

    def embed_prefix(self, images, img_masks, lang_tokens, lang_masks, state: Tensor = None):
        embs = [self.img_proj(img.mean(dim=(2, 3)))[:, None] for img in images]
        pads = [m[:, None] for m in img_masks]
        embs += [self.vlm_with_expert.embed(lang_tokens), self.state_proj(state)[:, None]]
        pads += [lang_masks, torch.ones(state.shape[0], 1, dtype=torch.bool)]
        embs_t, pad = torch.cat(embs, dim=1), torch.cat(pads, dim=1)
        att = torch.zeros_like(pad)
        att[:, -1] = True
        return embs_t, pad, att

    def denoise_step(self, prefix_pad_masks, past_key_values, x_t, timestep):
        m = prefix_pad_masks.float()[..., None]
        ctx = sum(
            (kv["value_states"].flatten(2) * m).sum(1) / m.sum(1) for kv in past_key_values.values()
        )  # [b, H*D]
        time = torch.stack(
            [torch.sin(timestep * 3), torch.cos(timestep * 3)] * (WIDTH // 2), dim=-1
        )  # [b, WIDTH]
        h = self.action_in_proj(x_t) + self.vlm_with_expert.lm_expert(torch.cat([ctx, time], dim=-1))[:, None]
        h = self.action_time_mlp_out(
            torch.tanh(self.action_time_mlp_in(torch.cat([h, time[:, None].expand_as(h)], -1)))
        )
        return self.action_out_proj(h)

    @torch.no_grad()
    def sample_actions(self, images, img_masks, lang_tokens, lang_masks, state, noise=None):
        """LeRobot's loop: prefix cache once, then x <- x + dt * u from t = 1 with dt = -1 / num_steps."""
        embs, pad, att = self.embed_prefix(images, img_masks, lang_tokens, lang_masks, state=state)
        _, kv = self.vlm_with_expert.forward(None, None, None, [embs, None], True, True)
        dt, x = -1.0 / self.config.num_steps, noise
        for step in range(self.config.num_steps):
            t = torch.tensor(1.0 + step * dt, dtype=torch.float32).expand(x.shape[0])
            x = x + dt * self.denoise_step(pad, kv, x, t)
        return x


def standin_model(**options) -> StandInVLAFlowMatching:
    """The ``model_factory`` of the adapter tests."""
    torch.manual_seed(int(options.pop("seed", 0)))
    return StandInVLAFlowMatching(**options)
