"""`vla train`: fine-tune the VLA on a LeRobotDataset v3.0 and write a policy checkpoint.

Flow-matching loss; AdamW with linear warm-up and cosine decay; gradient clipping; EMA weights
(what the checkpoint holds); bf16 autocast on CUDA. All randomness (batches, augmentation,
noise, flow times) comes from one generator whose state is saved with the optimizer, so a
resumed run equals an uninterrupted one. Ctrl-C saves a resumable state and exits.

Output directory:
    checkpoint/        the policy checkpoint (design §6) the policy node loads
    train_state/       optimizer, raw weights and generator state, for `resume:=true`
    history.json       losses per step; training_curves.png plots them
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any
from typing import NamedTuple

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save_file

from vla_common.errors import ConfigError
from vla_common.grounding import GroundingScenes
from vla_policy.checkpoint import load_checkpoint
from vla_policy.checkpoint import save_checkpoint
from vla_policy.config import preset_config
from vla_policy.config import read_config
from vla_policy.data import ACTION
from vla_policy.data import STATE
from vla_policy.data import DatasetError
from vla_policy.data import LeRobotDataset
from vla_policy.data import chunk_rows
from vla_policy.data import frame_cache
from vla_policy.data import next_grasp_rows
from vla_policy.data import relative_action_stats
from vla_policy.data import row_cache
from vla_policy.data import split_episodes
from vla_policy.finetune import BIN_RANGE
from vla_policy.finetune import DiscreteActionHead
from vla_policy.finetune import apply_lora
from vla_policy.finetune import merged
from vla_policy.grounding import GroundingBatches
from vla_policy.model import Observation
from vla_policy.model import VlaModel
from vla_policy.normalization import RELATIVE_ACTION
from vla_policy.normalization import Normalizer
from vla_policy.train_params import parse_arguments


def cache_dir() -> Path:
    return Path(os.environ.get('VLA_CACHE_DIR') or Path.home() / '.cache' / 'vla_stack')


def lr_at(step: int, p: dict[str, Any]) -> float:
    warm = min(1.0, (step + 1) / max(p['warmup_steps'], 1))
    progress = min(1.0, step / max(p['steps'] - 1, 1))
    return p['lr'] * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (90-100% of each side) resized back, then colour jitter.

    Images (B, cams, 3, h, w) in [0, 1]; one draw per image, from `generator`.
    """
    b, n, _, h, w = images.shape
    flat = images.flatten(0, 1)
    out = torch.empty_like(flat)
    draws = torch.rand(flat.shape[0], 7, generator=generator)
    for i, (sh, sw, oy, ox, bright, contrast, sat) in enumerate(draws.tolist()):
        ch, cw = round(h * (0.9 + 0.1 * sh)), round(w * (0.9 + 0.1 * sw))
        y, x = round(oy * (h - ch)), round(ox * (w - cw))
        crop = flat[i : i + 1, :, y : y + ch, x : x + cw]
        out[i] = torch.nn.functional.interpolate(
            crop, size=(h, w), mode='bilinear', align_corners=False
        )[0]
        grey = out[i].mean(0, keepdim=True)
        out[i] = (out[i] - grey) * (0.8 + 0.4 * sat) + grey
        mean = out[i].mean()
        out[i] = (out[i] - mean) * (0.8 + 0.4 * contrast) + mean + (bright - 0.5) * 0.2
    return out.clamp(0, 1).view(b, n, *flat.shape[1:])


class Batch(NamedTuple):
    obs: Observation
    actions: torch.Tensor
    """(B, H, max_action_dim) normalised action chunks."""
    mask: torch.Tensor
    """(B, H) False past the episode end."""
    goal: torch.Tensor
    """(B, max_action_dim) normalised action at the next grasp (the goal token's target)."""
    goal_mask: torch.Tensor
    """(B,) False where the episode has no grasp."""


class Trainer:
    def __init__(self, params: dict[str, Any]) -> None:
        self.p = p = params
        if not p['dataset']:
            raise ConfigError('give the dataset: dataset:=<LeRobotDataset v3.0 directory>')
        if p['threads'] > 0:
            torch.set_num_threads(p['threads'])
        device = p['device']
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)
        self.out = Path(p['output'])
        self.data = data = LeRobotDataset(p['dataset'])
        initial = read_config(p['init'])[0] if p['init'] else None
        cameras = initial.cameras if initial else [c for c in p['cameras'] if c] or data.cameras
        robot = self._robot_config(cameras)
        torch.manual_seed(p['seed'])
        shapes = {c: data.camera_shape(c) for c in cameras}
        if p['fresh_expert'] and not initial:
            raise ConfigError('fresh_expert:=true keeps the prefix of a checkpoint: give init:=')
        if initial:  # fine-tuning: the checkpoint's model, on this dataset's images
            if p['goal_target'] and not (initial.goal_target or p['fresh_expert']):
                raise ConfigError(
                    f'goal_target:=true needs a new action expert; {p["init"]} has none: '
                    'add fresh_expert:=true'
                )
            self.model = load_checkpoint(p['init'], robot)[0].to(self.device)
            self.model.config.camera_shapes = shapes
            if p['fresh_expert']:
                self.model = self.model.with_fresh_expert(p['goal_target'] or initial.goal_target)
        else:
            extra = {'goal_target': True} if p['goal_target'] else {}
            config = preset_config(
                p['preset'], robot, cameras=cameras, camera_shapes=shapes, fps=data.fps, **extra
            )
            self.model = VlaModel(config).to(self.device)
        self.config = config = self.model.config
        if p['lora_rank'] > 0:
            apply_lora(self.model, p['lora_rank'], p['lora_alpha'])
        stats = data.stats()
        try:
            self.normalizer = Normalizer(p['normalization'], stats)
        except ConfigError as exc:
            raise DatasetError(f'{data.root / "meta" / "stats.json"}: {exc}') from None
        if any(config.relative_joints):
            self.normalizer.stats[RELATIVE_ACTION] = relative_action_stats(
                data.states,
                data.actions,
                data.episodes,
                config.chunk_length,
                config.relative_joints,
            )
        self.train_episodes, self.val_episodes = split_episodes(
            data.episodes, p['val_fraction'], p['seed']
        )
        self.frames = frame_cache(data, cameras, config.image_size, cache_dir())
        self.features = self._feature_cache() if self._use_feature_cache() else None
        self.states = self._padded(
            self.normalizer.normalize(STATE, data.states), self.config.max_state_dim
        )
        self.absolute_actions = self._padded(  # the goal targets
            self.normalizer.normalize(ACTION, data.actions), self.config.max_action_dim
        )
        self.language = self._language_cache()
        self.goal_rows = self._goal_rows()
        self.grounding = None
        if p['grounding']:
            self.grounding = GroundingBatches(
                GroundingScenes.load(p['grounding']),
                self.model,
                self.normalizer,
                p['val_fraction'],
                p['seed'],
            )
            print(f'grounding: {len(self.grounding)} scenes teach the goal token')
        self.action_head = None
        if p['knowledge_insulation']:
            limit = BIN_RANGE[p['normalization']]
            self.action_head = DiscreteActionHead(config, limit).to(self.device)
        self.trainable = [q for q in self.model.parameters() if q.requires_grad]
        if self.action_head is not None:
            self.trainable += list(self.action_head.parameters())
        self.optimizer = torch.optim.AdamW(
            self.trainable, lr=p['lr'], weight_decay=p['weight_decay']
        )
        self.ema = copy.deepcopy(self.model).eval() if p['ema_decay'] > 0 else None
        self.generator = torch.Generator().manual_seed(p['seed'])
        self.step = 0
        self.goal_error = torch.tensor(float('nan'))
        self.history: dict[str, list] = {'train': [], 'val': []}

    def _robot_config(self, cameras: list[str]) -> dict[str, Any]:
        """The robot the policy drives: its config file when named, else from the dataset."""
        from vla_common.robot_config import load_robot_config

        robot = self.p['robot'] or self.data.info.get('robot_type') or ''
        if robot:
            config = load_robot_config(robot)
        else:
            config = {'robot': 'unknown', 'joints': {n: {} for n in self.data.action_names}}
        self.data.check_policy(list(config['joints']), cameras)
        config = dict(config)
        config['cameras'] = {
            c: dict(zip(('height', 'width'), self.data.camera_shape(c), strict=True))
            for c in cameras
        }
        config['fps'] = self.data.fps
        return config

    def _goal_rows(self) -> np.ndarray:
        """Per row, the row of the next grasp (-1: none), for the goal token or target."""
        none = np.full(len(self.absolute_actions), -1, dtype=np.int64)
        wanted = self.p['goal_weight'] > 0 or self.config.goal_target
        if not (self.config.goal_token and wanted):
            return none
        grippers = [i for i, n in enumerate(self.data.action_names) if 'gripper' in n]
        rows = next_grasp_rows(self.data.actions, self.data.episodes, grippers)
        covered = float((rows >= 0).mean())
        print(f'goal token: next-grasp targets for {covered:.0%} of the frames')
        return rows

    def _use_feature_cache(self) -> bool:
        return self.p['feature_cache'] and self.config.freeze_vision

    def _padded(self, values: np.ndarray, width: int) -> torch.Tensor:
        out = torch.zeros(*values.shape[:-1], width)
        out[..., : values.shape[-1]] = torch.from_numpy(values.astype(np.float32))
        return out

    def _feature_cache(self) -> np.ndarray:
        """Frozen vision features of every frame, computed once, keyed by dataset + encoder."""
        c = self.config

        def encode(store: np.ndarray, first: int, batch: int = 64) -> None:
            with torch.no_grad():
                for start in range(first, len(store), batch):
                    rows = np.arange(start, min(start + batch, len(store)))
                    features = self.model.encode_images(self._images(rows))
                    store[rows] = features.float().cpu().numpy()
                    print(
                        f'\rcaching vision features: {rows[-1] + 1}/{len(store)}',
                        end='',
                        flush=True,
                    )
            print(flush=True)

        with torch.no_grad():  # one frame tells the feature shape
            shape = self.model.encode_images(self._images(np.arange(1))).shape[1:]
        kind = (
            f'{"-".join(c.cameras)}-{c.vision.replace("/", "_")}-'
            f'{c.image_size[0]}x{c.image_size[1]}-g{c.vision_grid}'
        )
        return row_cache(self.data, cache_dir() / 'features', kind, shape, np.float16, encode)

    def _language_cache(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not self.config.freeze_language:
            return None
        with torch.no_grad():
            features, mask = self.model.encode_language(self.data.tasks)
        return features, mask

    def _images(self, rows: np.ndarray) -> torch.Tensor:
        images = torch.from_numpy(np.ascontiguousarray(self.frames[np.sort(rows)]))
        order = np.argsort(np.argsort(rows))  # memmap reads want sorted rows
        images = images[torch.from_numpy(order)]
        return images.permute(0, 1, 4, 2, 3).to(self.device, torch.float32) / 255.0

    # ----- batches -----

    def batch(self, episodes, generator: torch.Generator, training: bool) -> Batch:
        c = self.config
        lengths = torch.tensor([e.length for e in episodes], dtype=torch.float64)
        picks = torch.multinomial(lengths, self.p['batch_size'], True, generator=generator)
        frames = (
            torch.rand(len(picks), generator=generator, dtype=torch.float64) * lengths[picks]
        ).long()
        rows, targets, masks = [], [], []
        for e, f in zip(picks.tolist(), frames.tolist(), strict=True):
            episode = episodes[e]
            rows.append(episode.start + f)
            action_rows, mask = chunk_rows(episode, f, c.chunk_length)
            targets.append(action_rows)
            masks.append(mask)
        rows = np.array(rows)
        task_rows = self.data.task_index[rows]
        if self.language is not None:
            language, language_mask = (t[torch.from_numpy(task_rows)] for t in self.language)
        else:
            language, language_mask = self.model.encode_language(
                [self.data.tasks[i] for i in task_rows]
            )
        state = self.states[rows]
        if training and self.p['state_dropout'] > 0:
            # Without the joint state the model must read where to go from the images; with it
            # alone it learns to continue the motion the state already shows, and fails at the
            # start of an episode, where nothing moves yet.
            dropped = torch.rand(len(rows), generator=generator) < self.p['state_dropout']
            state = torch.where(dropped[:, None], torch.zeros_like(state), state)
        obs = Observation(
            language=language.to(self.device),
            language_mask=language_mask.to(self.device),
            state=state.to(self.device),
        )
        if self.features is not None:
            obs.image_features = torch.from_numpy(
                np.asarray(self.features[rows], dtype=np.float32)
            ).to(self.device)
            if c.goal_stem:  # unaugmented: a shifted crop would move where the cubes appear
                obs.images = self._images(rows)
        else:
            images = self._images(rows)
            obs.images = augment(images, generator) if training and self.p['augment'] else images
        chunks = self.normalizer.normalize_actions(
            self.data.actions[np.stack(targets)],
            self.data.states[rows][:, None],
            c.relative_joints,
        )
        actions = self._padded(chunks, c.max_action_dim).to(self.device)
        mask = torch.from_numpy(np.stack(masks)).to(self.device)
        goal_rows = torch.from_numpy(self.goal_rows[rows])
        goal = self.absolute_actions[goal_rows.clamp(min=0)]
        has_goal = goal_rows >= 0
        if c.goal_target and training:  # told the recorded grasp, a little off as the guess is
            # (validation tells the expert the goal token's guess, as at run time)
            spread = torch.randn(goal.shape, generator=generator)
            told = goal + self.p['goal_target_noise'] * spread
            obs.goal = torch.where(has_goal[:, None], told, torch.nan).to(self.device)
        return Batch(obs, actions, mask, goal.to(self.device), has_goal.to(self.device))

    # ----- the loop -----

    def loss(self, batch: Batch, generator, model=None, auxiliary=False) -> torch.Tensor:
        """The flow-matching loss; with `auxiliary`, plus the enabled auxiliary losses.

        Those are the binned-action loss (knowledge insulation) and the goal token's error.
        """
        model = model or self.model
        obs, actions, mask = batch.obs, batch.actions, batch.mask
        insulate = self.action_head is not None
        with torch.autocast('cuda', torch.bfloat16, enabled=self.device.type == 'cuda'):
            prefix = model.prefix_forward(obs)
            loss = model.flow_loss(obs, actions, mask, generator, prefix, insulate)
            if auxiliary and insulate:
                discrete = self.action_head.loss(prefix, actions, mask)
                loss = loss + self.p['discrete_loss_weight'] * discrete
            if auxiliary and prefix.goal is not None and batch.goal_mask.any():
                goal_error = self.goal_error_of(model, prefix.goal, batch)
                self.goal_error = goal_error.detach()
                loss = loss + self.p['goal_weight'] * goal_error
            if auxiliary and self.grounding is not None:
                grounding = self.grounding.loss(model, self.p['batch_size'], generator)
                loss = loss + self.p['grounding_weight'] * grounding
        return loss

    @staticmethod
    def goal_error_of(model: VlaModel, guess: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Mean squared error of the grasp guess, over real joints of episodes with a grasp."""
        weight = batch.goal_mask[:, None] & model.action_dim_mask[None, :]
        return ((guess - batch.goal) ** 2 * weight).sum() / weight.sum().clamp(min=1)

    def validate(self) -> float | None:
        """Mean loss of the (EMA) model on fixed held-out batches: comparable across steps."""
        model = self.ema or self.model
        model.eval()
        grounded = self.grounding.nearest_fraction(model) if self.grounding else None
        if grounded is not None:
            self.history.setdefault('val_grounded', []).append([self.step, grounded])
        if not self.val_episodes:
            return None
        generator = torch.Generator().manual_seed(self.p['seed'] + 1)
        losses, goal_errors = [], []
        with torch.no_grad():
            for _ in range(4):
                batch = self.batch(self.val_episodes, generator, False)
                losses.append(float(self.loss(batch, generator, model)))
                if self.goal_rows.max() >= 0 and batch.goal_mask.any():
                    guess = model.prefix_forward(batch.obs).goal
                    goal_errors.append(float(self.goal_error_of(model, guess, batch)))
        if goal_errors:  # held out: does the goal token find the named object in new scenes?
            self.history.setdefault('val_goal', []).append(
                [self.step, float(np.mean(goal_errors))]
            )
        return sum(losses) / len(losses)

    def train(self) -> Path:
        p = self.p
        if p['resume']:
            self.load_state()
        from tqdm import tqdm

        bar = tqdm(
            total=p['steps'],
            initial=self.step,
            desc='train',
            unit='step',
            file=sys.stdout,
            dynamic_ncols=True,
        )
        started, samples = time.perf_counter(), 0
        self._clock = started - self.history.get('elapsed_s', 0.0)  # counts seconds before resume
        try:
            while self.step < p['steps']:
                self.model.train()
                for group in self.optimizer.param_groups:
                    group['lr'] = lr_at(self.step, p)
                batch = self.batch(self.train_episodes, self.generator, True)
                loss = self.loss(batch, self.generator, auxiliary=True)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if p['grad_clip'] > 0:
                    torch.nn.utils.clip_grad_norm_(self.trainable, p['grad_clip'])
                self.optimizer.step()
                self._update_ema()
                self.step += 1
                samples += p['batch_size']
                self.history['train'].append([self.step, loss.item()])
                out_of_time = 0 < p['max_minutes'] * 60 < time.perf_counter() - self._clock
                last = self.step == p['steps'] or out_of_time
                if self.step % p['val_every'] == 0 or last:
                    val = self.validate()
                    if val is not None:
                        seconds = round(time.perf_counter() - self._clock, 1)
                        self.history['val'].append([self.step, val, seconds])
                if self.step % p['save_every'] == 0 or last:
                    self.save()
                if out_of_time:
                    bar.close()
                    print(f'stopped at step {self.step}: max_minutes:={p["max_minutes"]:g}')
                    break
                rate = samples / (time.perf_counter() - started)
                val = self.history['val'][-1][1] if self.history['val'] else float('nan')
                shown = {'loss': f'{loss.item():.4f}', 'val': f'{val:.4f}'}
                if self.history.get('val_goal'):
                    shown['goal'] = f'{self.goal_error.item():.3f}'
                    shown['val_goal'] = f'{self.history["val_goal"][-1][1]:.3f}'
                if self.history.get('val_grounded'):
                    shown['grounded'] = f'{self.history["val_grounded"][-1][1]:.0%}'
                bar.set_postfix(shown, samples_s=f'{rate:.1f}')
                bar.update(1)
        except KeyboardInterrupt:
            bar.close()
            self.save()
            print(f'interrupted at step {self.step}: saved; continue with resume:=true')
            raise
        bar.close()
        return self.out / 'checkpoint'

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        decay = min(self.p['ema_decay'], (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for e, m in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                if m.requires_grad:
                    e.lerp_(m, 1 - decay)

    # ----- saving and resuming -----

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.history['elapsed_s'] = round(time.perf_counter() - self._clock, 1)
        extra = {'training': {'step': self.step, 'dataset': str(self.data.root)}}
        model = self.ema or self.model
        if self.p['lora_rank'] > 0:
            model = merged(model)
        save_checkpoint(self.out / 'checkpoint', model, self.normalizer, extra)
        state = self.out / 'train_state'
        partial = self.out / '.train_state.partial'
        partial.mkdir(exist_ok=True)
        tensors = {f'model.{k}': v.contiguous() for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors |= {f'ema.{k}': v.contiguous() for k, v in self.ema.state_dict().items()}
        if self.action_head is not None:
            tensors |= {
                f'head.{k}': v.contiguous() for k, v in self.action_head.state_dict().items()
            }
        for i, slots in self.optimizer.state_dict()['state'].items():
            tensors |= {f'optim.{i}.{k}': torch.as_tensor(v) for k, v in slots.items()}
        tensors['generator'] = self.generator.get_state()
        save_file({k: v.cpu() for k, v in tensors.items()}, str(partial / 'state.safetensors'))
        (partial / 'trainer.json').write_text(
            json.dumps({'step': self.step, 'history': self.history, 'params': self.p}) + '\n'
        )
        if state.exists():
            for f in state.iterdir():
                f.unlink()
            state.rmdir()
        partial.rename(state)
        (self.out / 'history.json').write_text(json.dumps(self.history) + '\n')
        plot_history(self.history, self.out / 'training_curves.png')

    def load_state(self) -> None:
        state = self.out / 'train_state'
        if not (state / 'trainer.json').is_file():
            raise ConfigError(f'resume:=true but {state} holds no training state')
        trainer = json.loads((state / 'trainer.json').read_text())
        tensors = load_file(str(state / 'state.safetensors'))
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k[:6] == 'model.'})
        if self.ema is not None:
            self.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k[:4] == 'ema.'})
        if self.action_head is not None:
            self.action_head.load_state_dict(
                {k[5:]: v for k, v in tensors.items() if k[:5] == 'head.'}
            )
        optim = self.optimizer.state_dict()
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith('optim.'):
                _, index, name = key.split('.', 2)
                slots.setdefault(int(index), {})[name] = value
        optim['state'] = slots
        self.optimizer.load_state_dict(optim)
        self.generator.set_state(tensors['generator'])
        self.step = trainer['step']
        self.history = trainer['history']


def plot_history(history: dict[str, list], path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if history['train']:
        steps, losses = np.array(history['train']).T
        ax.plot(steps, losses, alpha=0.3, label='train (per step)')
        window = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(window) / window, mode='valid')
        ax.plot(steps[window - 1 :], smooth, label=f'train ({window}-step mean)')
    if history['val']:
        steps, losses = np.array(history['val']).T[:2]
        ax.plot(steps, losses, 'o-', label='validation')
    ax.set_xlabel('step')
    ax.set_ylabel('flow-matching loss')
    ax.set_yscale('log')
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(items: list[str]) -> int:
    trainer = Trainer(parse_arguments(items))
    c = trainer.config
    print(
        f'training {c.robot} {trainer.p["preset"]} on {trainer.data.root}: '
        f'{len(trainer.train_episodes)} train / {len(trainer.val_episodes)} val episodes, '
        f'cameras {c.cameras}, {"cached features" if trainer.features is not None else "images"}'
    )
    try:
        checkpoint = trainer.train()
    except KeyboardInterrupt:
        return 130
    val = trainer.history['val'][-1][1] if trainer.history['val'] else None
    print(f'checkpoint: {checkpoint} (validation loss {val})')
    return 0
