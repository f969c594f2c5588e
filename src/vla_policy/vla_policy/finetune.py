"""Fine-tuning options: LoRA on the backbone, and knowledge insulation.

The backbone is the prefix transformer (with the encoders, which keep their own freeze
settings). LoRA (Hu et al. 2021, through `peft`) freezes its linear layers and trains low-rank
adapters beside them; before saving, the adapters are merged back, so a checkpoint is always a
plain model that the policy node loads without peft.

Knowledge insulation (Driess et al., "Knowledge Insulating Vision-Language-Action Models",
2025): the action expert's flow loss stops at the prefix keys/values, and the backbone learns
from its own objective instead, predicting the chunk as discrete tokens: 256 bins per action
dimension, as in RT-1/RT-2. The discrete head is a training-time part: the checkpoint does not
hold it, inference never runs it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from vla_policy.config import PolicyConfig
from vla_policy.model import Prefix
from vla_policy.model import VlaModel

LORA_TARGETS = r'.*\.(qkv|out|mlp\.0|mlp\.2)$'
"""The prefix transformer's linear layers (names inside `VlaModel.prefix_layers`)."""

BINS = 256
BIN_RANGE = {'mean_std': 3.0, 'quantile': 1.0}
"""Normalised actions are binned over [-r, r] (3 standard deviations, or q01..q99); values
outside fall into the edge bins, as RT-1 clips to the action bounds."""


def apply_lora(model: VlaModel, rank: int, alpha: float) -> None:
    """Freeze the prefix transformer and add trainable rank-`rank` adapters to its linears."""
    from peft import LoraConfig
    from peft import inject_adapter_in_model

    model.prefix_layers.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=LORA_TARGETS)
    inject_adapter_in_model(config, model.prefix_layers)


def merged(model: VlaModel) -> VlaModel:
    """A copy of `model` with every LoRA adapter folded into its base weight (plain layers)."""
    from peft.tuners.lora import LoraLayer

    plain = copy.deepcopy(model)
    adapted = [(n, m) for n, m in plain.named_modules() if isinstance(m, LoraLayer)]
    for name, module in adapted:
        module.merge()
        parent_name, _, child = name.rpartition('.')
        setattr(plain.get_submodule(parent_name), child, module.get_base_layer())
    return plain


def to_bins(actions: torch.Tensor, limit: float) -> torch.Tensor:
    """Normalised actions -> bin indices in [0, BINS)."""
    scaled = (actions.clamp(-limit, limit) + limit) / (2 * limit)
    return (scaled * BINS).long().clamp(max=BINS - 1)


def from_bins(bins: torch.Tensor, limit: float) -> torch.Tensor:
    """Bin indices -> the centre of each bin (normalised actions)."""
    return (bins.float() + 0.5) / BINS * (2 * limit) - limit


class DiscreteActionHead(nn.Module):
    """Reads the prefix output and predicts every `stride`-th action of the chunk as bins.

    One learned query per (step, dimension) is added to a summary of the prefix (the mean of
    its real tokens and the state token), and a small MLP gives 256 logits for it.
    """

    def __init__(self, config: PolicyConfig, limit: float, predicted_steps: int = 10) -> None:
        super().__init__()
        self.limit = limit
        self.stride = max(1, config.chunk_length // predicted_steps)
        self.steps = len(range(0, config.chunk_length, self.stride))
        self.dims = config.action_dim
        self.state_token = config.image_tokens + config.max_language_tokens
        w = config.width
        self.query = nn.Parameter(torch.randn(self.steps * self.dims, w) * 0.02)
        self.summary = nn.Linear(2 * w, w)
        self.mlp = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, w), nn.GELU(), nn.Linear(w, BINS))

    def logits(self, prefix: Prefix) -> torch.Tensor:
        """(B, steps * dims, BINS)."""
        mask = prefix.mask[..., None].to(prefix.hidden.dtype)
        mean = (prefix.hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        state = prefix.hidden[:, self.state_token]
        summary = self.summary(torch.cat([mean, state], dim=-1))
        return self.mlp(summary[:, None] + self.query.to(summary.dtype)).float()

    def loss(self, prefix: Prefix, actions: torch.Tensor, action_mask: torch.Tensor):
        """Cross-entropy of the binned actions (B, H, D), steps past the episode end left out."""
        picked = actions[:, :: self.stride, : self.dims]
        targets = to_bins(picked, self.limit).flatten(1)
        weight = action_mask[:, :: self.stride, None].expand_as(picked).flatten(1).float()
        error = F.cross_entropy(self.logits(prefix).transpose(1, 2), targets, reduction='none')
        return (error * weight).sum() / weight.sum().clamp(min=1)
