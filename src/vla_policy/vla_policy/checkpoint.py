"""Checkpoints (design §6): a directory with model.safetensors, config.json, normalization.json.

No pickle anywhere. Frozen pretrained encoders (EfficientNet-Lite0, MiniLM, Hugging Face towers)
are not copied into every checkpoint: they are rebuilt from their package or path, which the
config names. Loading checks the checkpoint against the robot it is about to drive and says
exactly what does not match.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save_file

from vla_common.errors import ConfigError
from vla_policy.config import CONFIG
from vla_policy.config import FORMAT_VERSION
from vla_policy.config import PolicyConfig
from vla_policy.config import read_config
from vla_policy.model import VlaModel
from vla_policy.normalization import RELATIVE_ACTION
from vla_policy.normalization import Normalizer

WEIGHTS, NORMALIZATION = 'model.safetensors', 'normalization.json'


def _external_prefixes(config: PolicyConfig) -> tuple[str, ...]:
    """State-dict prefixes of frozen pretrained encoders, which load from their own source."""
    prefixes = []
    if config.freeze_vision and config.vision != 'small_cnn':
        prefixes.append('vision.')
    if config.freeze_language and config.language == 'minilm':
        prefixes.append('language_encoder.')
    return tuple(prefixes)


def save_checkpoint(
    directory: str | Path, model: VlaModel, normalizer: Normalizer, extra: dict | None = None
) -> Path:
    """Write the checkpoint atomically.

    Files go to a temporary directory that is then renamed, so a crash mid-save never leaves a
    half-written checkpoint under the final name.
    """
    directory = Path(directory)
    staging = directory.with_name(f'.{directory.name}.partial')
    staging.mkdir(parents=True, exist_ok=True)
    skip = _external_prefixes(model.config)
    weights = {
        k: v.detach().to('cpu', torch.float32).contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith(skip)
    }
    save_file(weights, str(staging / WEIGHTS), metadata={'format_version': str(FORMAT_VERSION)})
    config = {'format_version': FORMAT_VERSION, **model.config.to_dict(), **(extra or {})}
    (staging / CONFIG).write_text(json.dumps(config, indent=1) + '\n')
    normalizer.save(staging / NORMALIZATION)
    if directory.exists():
        old = directory.with_name(f'.{directory.name}.old')
        os.replace(directory, old)
        os.replace(staging, directory)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        os.replace(staging, directory)
    return directory


def load_checkpoint(
    directory: str | Path,
    robot_config: dict[str, Any] | None = None,
    device: str | torch.device = 'cpu',
) -> tuple[VlaModel, Normalizer]:
    """Rebuild the model in eval mode, checked against `robot_config` when given."""
    directory = Path(directory)
    config, _ = read_config(directory)
    if robot_config is not None:
        check_robot(config, robot_config)
    normalizer = Normalizer.load(directory / NORMALIZATION)
    features = ['observation.state', 'action']
    if any(config.relative_joints):
        features.append(RELATIVE_ACTION)
    for feature in features:
        if feature not in normalizer.stats:
            raise ConfigError(
                f'{directory / NORMALIZATION}: no {feature} statistics (the model needs them)'
            )
        dims = {len(v) for v in normalizer.stats[feature].values()}
        if dims != {config.action_dim}:
            raise ConfigError(
                f'{directory / NORMALIZATION}: {feature} statistics have {sorted(dims)} '
                f'dimensions, the model has {config.action_dim} joints'
            )
    model = VlaModel(config)
    try:
        weights = load_file(str(directory / WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise ConfigError(f'{directory / WEIGHTS}: cannot read weights ({exc})') from None
    result = model.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(_external_prefixes(config))]
    if missing or result.unexpected_keys:
        raise ConfigError(
            f'{directory / WEIGHTS} does not fit its config: missing {missing[:5]}, '
            f'unexpected {result.unexpected_keys[:5]}'
        )
    return model.to(device).eval(), normalizer


def check_robot(config: PolicyConfig, robot_config: dict[str, Any]) -> None:
    """Raise ConfigError listing every way the checkpoint and the robot disagree."""
    robot = robot_config.get('robot', '?')
    problems = []
    joints = list(robot_config.get('joints') or {})
    missing = [j for j in config.joint_names if j not in joints]
    extra = [j for j in joints if j not in config.joint_names]
    if missing:
        problems.append(f'joints {", ".join(missing)} are not on {robot}')
    if extra:
        problems.append(f'{robot} joints {", ".join(extra)} are not driven by the checkpoint')
    cameras = robot_config.get('cameras') or {}
    # Image sizes are checked per image at run time: a simulated camera may render at another
    # size than the real one the robot config describes.
    absent = [c for c in config.cameras if c not in cameras]
    if absent:
        problems.append(
            f'camera(s) {", ".join(absent)} not on {robot} (it has {", ".join(cameras) or "none"})'
        )
    fps = float(robot_config.get('fps', 0))
    if fps and abs(fps - config.fps) > 1e-6:
        problems.append(f'{robot} runs at {fps:g} fps, the checkpoint at {config.fps:g} fps')
    if problems:
        raise ConfigError(
            f'checkpoint for {config.robot} does not fit {robot}: ' + '; '.join(problems)
        )
