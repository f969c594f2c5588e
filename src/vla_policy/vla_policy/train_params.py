"""`vla train` arguments: one table, importable without torch (the CLI lists it in --help)."""

from __future__ import annotations

from typing import Any

from vla_common.errors import ConfigError
from vla_common.params import Param
from vla_common.params import resolve

TRAIN_PARAMETERS = [
    Param('dataset', '', 'LeRobotDataset v3.0 directory.'),
    Param('output', 'outputs/train', 'Output directory (checkpoint/, train_state/, plots).'),
    Param('preset', 'small_cpu', 'Model preset: tiny, small_cpu, smolvla_size.'),
    Param('robot', '', 'Robot config for joint limits and cameras (default: the dataset robot).'),
    Param('cameras', [''], 'Cameras to use (default: every camera of the dataset).'),
    Param('steps', 2000, 'Optimizer steps.'),
    Param('max_minutes', 0.0, 'Stop (and save) after this much training time (0: no limit).'),
    Param('batch_size', 32, 'Samples per step.'),
    Param('lr', 3e-4, 'Peak learning rate.'),
    Param('warmup_steps', 100, 'Linear warm-up, then cosine decay to 10% at the last step.'),
    Param('weight_decay', 1e-2, 'AdamW weight decay.'),
    Param('grad_clip', 1.0, 'Gradient norm clip (0: off).'),
    Param('ema_decay', 0.995, 'EMA of the weights (0: off); the checkpoint holds the EMA.'),
    Param('save_every', 500, 'Steps between checkpoints (also saved at the end).'),
    Param('val_every', 100, 'Steps between validation losses.'),
    Param('val_fraction', 0.1, 'Fraction of episodes held out for validation.'),
    Param('normalization', 'mean_std', 'mean_std or quantile (q01/q99 from meta/stats.json).'),
    Param(
        'augment', True, 'Random crop and colour jitter (images only: not with cached features).'
    ),
    Param('state_dropout', 0.0, 'Fraction of training samples whose joint state is zeroed.'),
    Param('feature_cache', True, 'Cache frozen vision features on disk (CPU-friendly).'),
    Param('device', 'auto', 'cpu, cuda or auto.'),
    Param('threads', 0, 'torch CPU threads (0: torch default).'),
    Param('seed', 0, 'Seed of initialisation, split and every random draw.'),
    Param('resume', False, 'Continue from output/train_state.'),
    Param('init', '', 'Fine-tune from this checkpoint directory (its config replaces preset).'),
    Param(
        'fresh_expert',
        False,
        'With init: keep its prefix and goal token, start a new action expert (with '
        'goal_target:=true, the way to add a target a trained expert would ignore).',
    ),
    Param('lora_rank', 0, 'LoRA rank on the prefix transformer (peft; 0: full fine-tuning).'),
    Param('lora_alpha', 16.0, 'LoRA scale numerator (adapter output x alpha / rank).'),
    Param(
        'knowledge_insulation',
        False,
        'The flow loss stops at the prefix; the prefix learns from 256-bin action tokens.',
    ),
    Param(
        'goal_weight',
        1.0,
        'Weight of the goal token loss (its guess of the pose at the next grasp; 0: off).',
    ),
    Param(
        'grounding',
        '',
        'Grounding scenes (.npz from vla grounding): each step also asks the goal token for '
        'one labelled object in each of batch_size scenes.',
    ),
    Param('grounding_weight', 1.0, 'Weight of the grounding scenes loss.'),
    Param(
        'goal_target',
        False,
        "Tell the action expert the goal token's grasp guess (a new model; see PolicyConfig).",
    ),
    Param(
        'goal_target_noise',
        0.1,
        'With goal_target: spread (normalised units) added to the recorded grasp the expert is '
        'told, as the goal token guesses it only so well.',
    ),
    Param('discrete_loss_weight', 1.0, 'Weight of the binned-action loss (knowledge insulation).'),
]


def parse_arguments(items: list[str]) -> dict[str, Any]:
    """`name:=value` pairs, typed by TRAIN_PARAMETERS."""
    table = {p.name: p for p in TRAIN_PARAMETERS}
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition(':=')
        if not sep or name not in table:
            known = ', '.join(table)
            raise ConfigError(f'expected name:=value with a name among {known}; got {item!r}')
        default = table[name].default
        try:
            if isinstance(default, bool):
                if text.lower() not in ('true', 'false'):
                    raise ValueError(f'{text!r} is not true/false')
                values[name] = text.lower() == 'true'
            elif isinstance(default, list):
                values[name] = [v for v in text.split(',') if v]
            else:
                values[name] = type(default)(text)
        except ValueError as exc:
            raise ConfigError(f'{name}: {exc}') from None
    return resolve(TRAIN_PARAMETERS, values)
