"""Policy inference benchmark: chunk latency, prefix cache, CUDA graph, real-time chunking.

    source env.sh && python bench/policy_bench.py                     # everything, 1 thread
    python bench/policy_bench.py --quick                              # smoke run (small N)
    python bench/policy_bench.py --presets tiny small_cpu --threads 2 --out /tmp/policy.json
    python bench/policy_bench.py --skip-smolvla --repeats 200

latency: `PolicyRunner.infer` on random uint8 images of the SO-101 cameras (2 x 480x640) and a
random state, with one instruction (its features are cached per string, as in the node), for
the presets `tiny`, `small_cpu` and `smolvla_size` (random init). p50 / p99 over --repeats
calls after warm-up, and the split of the same work into preprocessing (checks, resize,
normalisation), the prefix (`model.prefix_forward`) and the K-step flow loop
(`model.integrate`). Target: `small_cpu` p99 < 250 ms on a CPU.

prefix cache: `model.sample(obs, noise, cache_prefix=True)` against `cache_prefix=False` (the
prefix recomputed at every flow step), interleaved in pairs; the median of the per-pair ratios.

CUDA graph (only where torch.cuda.is_available()): `PolicyRunner(..., cuda_graph=True)` against
`cuda_graph=False` on the same bf16 model, interleaved.

real-time chunking: the `tiny` preset is first trained (flow matching, AdamW) on a synthetic
multimodal task: every chunk is a sinusoid (1 Hz, one amplitude per joint, a fixed phase offset
between joints) whose phase and direction are drawn at random, independent of the observation,
so chunks sampled independently from the same observation disagree. Then execution is
simulated on one fixed observation: chunk k is inferred at step s_k = k * horizon; action i of a
chunk is for s_k + i + 1 (ActionChunk timing: stamp + (i + 1) / fps); while the model runs,
`delay` actions of the previous chunk execute, so the first new action executed is index
`delay`, right after previous[delay - 1] (previous = the previous chunk's actions for the new
chunk's times, i.e. its actions from index `horizon` on). Jump = |new[delay] -
previous[delay - 1]|, averaged over joints, per switch; compared with the per-step change of
the executed actions inside chunks. Without guidance `previous` is not passed; with it,
`infer(previous=..., delay=...)` applies the real-time-chunking pull. The two chains run
interleaved, switch by switch, and draw the same noise.

Timing uses torch.set_num_threads(--threads) (and as many OpenCV threads); everything is
seeded (--seed), so reruns give the same chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vla_common.robot_config import load_robot_config
from vla_policy.config import PRESETS
from vla_policy.config import PolicyConfig
from vla_policy.config import preset_config
from vla_policy.inference import PolicyRunner
from vla_policy.model import Observation
from vla_policy.model import VlaModel
from vla_policy.normalization import Normalizer

ROBOT = 'so101'
SLOW_PRESETS = ('smolvla_size',)
TARGET_PRESET, TARGET_P99_MS = 'small_cpu', 250.0
INSTRUCTION = 'pick up the red cube'
INSTRUCTIONS = ('pick up the red cube', 'pick up the green cube', 'pick up the blue cube')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=1, help='torch (and OpenCV) threads')
    parser.add_argument('--presets', nargs='+', choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument('--repeats', type=int, default=200, help='timed calls per preset')
    parser.add_argument(
        '--slow-repeats', type=int, default=20, help='timed calls for smolvla_size'
    )
    parser.add_argument('--skip-smolvla', action='store_true', help='leave smolvla_size out')
    parser.add_argument('--warmup', type=int, default=5, help='untimed calls first (slow: 2)')
    parser.add_argument(
        '--cache-repeats', type=int, default=25, help='prefix cache: timed pairs per preset'
    )
    parser.add_argument(
        '--slow-cache-repeats', type=int, default=5, help='prefix cache pairs for smolvla_size'
    )
    parser.add_argument('--rtc-steps', type=int, default=600, help='training steps (tiny)')
    parser.add_argument('--rtc-batch', type=int, default=64)
    parser.add_argument('--switches', type=int, default=200, help='chunk switches per mode')
    parser.add_argument('--delay', type=int, default=3, help='actions executed during infer')
    parser.add_argument('--horizon', type=int, default=10, help='actions executed per chunk')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--quick', action='store_true', help='small N: a smoke run')
    parser.add_argument('--out', type=Path, help='also write the results as JSON here')
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.slow_repeats, args.warmup = 5, 1, 1
        args.cache_repeats, args.slow_cache_repeats = 2, 1
        args.rtc_steps, args.switches = 30, 10
    if args.skip_smolvla:
        args.presets = [p for p in args.presets if p not in SLOW_PRESETS]
    return args


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99)."""
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def random_images(rng: np.random.Generator, config: PolicyConfig) -> dict[str, np.ndarray]:
    return {
        c: rng.integers(0, 256, (*config.camera_shapes[c], 3), dtype=np.uint8)
        for c in config.cameras
    }


def build(preset: str, seed: int, device: str = 'cpu') -> tuple[VlaModel, Normalizer]:
    torch.manual_seed(seed)
    config = preset_config(preset, load_robot_config(ROBOT))
    model = VlaModel(config).to(device).eval()
    return model, Normalizer.identity(config.action_dim)


def inputs(config: PolicyConfig, seed: int, count: int = 4) -> list[tuple[dict, np.ndarray]]:
    """A few (images, state) observations to cycle through."""
    rng = np.random.default_rng(seed)
    return [
        (random_images(rng, config), rng.normal(0.0, 0.3, config.action_dim)) for _ in range(count)
    ]


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


# --- 1. latency per chunk ----------------------------------------------------------------------


@torch.no_grad()
def measure_latency(preset: str, repeats: int, warmup: int, seed: int) -> dict:
    model, normalizer = build(preset, seed)
    runner = PolicyRunner(model, normalizer, seed=seed, cuda_graph=False)
    observations = inputs(model.config, seed)
    for i in range(warmup):
        images, state = observations[i % len(observations)]
        runner.infer(images, state, INSTRUCTION)
    times: dict[str, list[float]] = {'infer': [], 'preprocess': [], 'prefix': [], 'flow': []}
    for i in range(repeats):
        images, state = observations[i % len(observations)]
        start = time.perf_counter()
        runner.infer(images, state, INSTRUCTION)
        times['infer'].append(ms_since(start))
        # The same work again, timed by part (PolicyRunner.infer without guidance).
        start = time.perf_counter()
        obs = runner.observation(images, state, INSTRUCTION)
        times['preprocess'].append(ms_since(start))
        start = time.perf_counter()
        prefix = model.prefix_forward(obs)
        times['prefix'].append(ms_since(start))
        start = time.perf_counter()
        x = model.integrate(runner.noise(), prefix)
        normalizer.unnormalize('action', x[0, :, : model.config.action_dim].double().numpy())
        times['flow'].append(ms_since(start))
    parameters = sum(p.numel() for p in model.parameters())
    return {
        'preset': preset,
        'parameters_m': parameters / 1e6,
        'calls': repeats,
        'flow_steps': model.config.flow_steps,
        'chunk_length': model.config.chunk_length,
        'prefix_length': model.config.prefix_length,
        **{f'{k}_p50_p99_ms': percentiles(v) for k, v in times.items()},
    }


# --- 2. prefix cache ---------------------------------------------------------------------------


@torch.no_grad()
def measure_prefix_cache(preset: str, pairs: int, warmup: int, seed: int) -> dict:
    model, normalizer = build(preset, seed)
    runner = PolicyRunner(model, normalizer, seed=seed, cuda_graph=False)
    images, state = inputs(model.config, seed, count=1)[0]
    obs = runner.observation(images, state, INSTRUCTION)
    noise = runner.noise()
    for _ in range(warmup):
        model.sample(obs, noise, cache_prefix=True)
    model.sample(obs, noise, cache_prefix=False)
    times: dict[bool, list[float]] = {True: [], False: []}
    same = True
    for i in range(pairs):
        results = {}
        for cache in (True, False) if i % 2 == 0 else (False, True):
            start = time.perf_counter()
            results[cache] = model.sample(obs, noise, cache_prefix=cache)
            times[cache].append(ms_since(start))
        same = same and torch.equal(results[True], results[False])
    ratios = [u / c for c, u in zip(times[True], times[False], strict=True)]
    return {
        'preset': preset,
        'pairs': pairs,
        'cached_ms_p50': float(np.median(times[True])),
        'uncached_ms_p50': float(np.median(times[False])),
        'speedup_median': float(np.median(ratios)),
        'identical_actions': same,
    }


# --- 3. CUDA graph -----------------------------------------------------------------------------


@torch.no_grad()
def measure_cuda_graph(preset: str, repeats: int, warmup: int, seed: int) -> dict:
    model, normalizer = build(preset, seed, device='cuda')
    # Both runners share the (bf16) model; only the first replays the captured flow loop.
    runners = {
        True: PolicyRunner(model, normalizer, seed=seed, cuda_graph=True),
        False: PolicyRunner(model, normalizer, seed=seed, cuda_graph=False),
    }
    observations = inputs(model.config, seed)
    for i in range(max(warmup, 3)):  # the graph is captured on the first call
        images, state = observations[i % len(observations)]
        for runner in runners.values():
            runner.infer(images, state, INSTRUCTION)
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(repeats):
        images, state = observations[i % len(observations)]
        for graph in (True, False) if i % 2 == 0 else (False, True):
            torch.cuda.synchronize()
            start = time.perf_counter()
            runners[graph].infer(images, state, INSTRUCTION)  # returns numpy: synchronised
            times[graph].append(ms_since(start))
    ratios = [e / g for g, e in zip(times[True], times[False], strict=True)]
    return {
        'preset': preset,
        'calls': repeats,
        'graph_p50_p99_ms': percentiles(times[True]),
        'eager_p50_p99_ms': percentiles(times[False]),
        'speedup_median': float(np.median(ratios)),
    }


# --- 4. real-time chunking ---------------------------------------------------------------------


class SinusoidTask:
    """Chunks a_j(i) = A_j sin(direction * w * (i + 1) / fps + phase + offset_j).

    Phase ~ U[0, 2 pi) and direction = +-1 are drawn per chunk, independent of the observation.
    The rest of any chunk, shifted in time, is again a chunk of the task, so a continuation
    that agrees with the previous chunk always exists.
    """

    def __init__(self, config: PolicyConfig, frequency_hz: float = 1.0) -> None:
        self.length, self.fps, d = config.chunk_length, config.fps, config.action_dim
        self.omega = 2 * np.pi * frequency_hz
        self.amplitude = np.linspace(0.3, 0.8, d)
        self.offset = np.linspace(0.0, np.pi, d, endpoint=False)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, length, joints) in radians."""
        phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
        direction = rng.choice([-1.0, 1.0], n)[:, None, None]
        t = (np.arange(self.length) + 1)[None, :, None] / self.fps
        return self.amplitude * np.sin(direction * self.omega * t + phase + self.offset)

    def normalizer(self, rng: np.random.Generator) -> Normalizer:
        values = self.sample(rng, 4096).reshape(-1, len(self.amplitude))
        stats = {'mean': values.mean(0), 'std': values.std(0)}
        return Normalizer('mean_std', {'observation.state': stats, 'action': stats})


def train_tiny(
    steps: int, batch: int, seed: int, lr: float = 3e-3
) -> tuple[VlaModel, Normalizer, dict]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    config = preset_config('tiny', load_robot_config(ROBOT))
    model = VlaModel(config)
    task = SinusoidTask(config)
    normalizer = task.normalizer(rng)
    helper = PolicyRunner(model, normalizer, seed=seed, cuda_graph=False)  # preprocessing only
    pool = inputs(config, seed + 1, count=64)
    with torch.no_grad():
        # The task ignores the images: the vision encoder keeps its initial weights (no
        # gradient reaches it, AdamW skips it) and its features are computed once.
        images = torch.cat([helper.image_tensor(i) for i, _ in pool])
        features = model.encode_images(images)
        states = torch.cat([helper.state_tensor(s) for _, s in pool])
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    valid = torch.ones(batch, config.chunk_length, dtype=torch.bool)
    losses, start = [], time.perf_counter()
    for _ in range(steps):
        index = torch.from_numpy(rng.integers(0, len(pool), batch))
        texts = [INSTRUCTIONS[i] for i in rng.integers(0, len(INSTRUCTIONS), batch)]
        language, mask = model.encode_language(texts)
        obs = Observation(language, mask, states[index], image_features=features[index])
        actions = torch.zeros(batch, config.chunk_length, config.max_action_dim)
        chunks = normalizer.normalize('action', task.sample(rng, batch))
        actions[..., : config.action_dim] = torch.from_numpy(chunks).float()
        loss = model.flow_loss(obs, actions, valid, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    window = max(1, min(20, steps // 5))
    info = {
        'steps': steps,
        'batch': batch,
        'train_s': time.perf_counter() - start,
        'loss_first': float(np.mean(losses[:window])),
        'loss_last': float(np.mean(losses[-window:])),
        'task_step_rad': float(np.abs(np.diff(task.sample(rng, 1024), axis=1)).mean()),
    }
    return model.eval(), normalizer, info


def simulate(
    runners: dict[bool, PolicyRunner],
    observation: tuple[dict, np.ndarray],
    switches: int,
    delay: int,
    horizon: int,
) -> list[dict]:
    """Both chains (without, with guidance) side by side, switch by switch.

    The runners share the model and their noise seed, so both chains draw the same noise.
    """
    images, state = observation
    chunks = {g: r.infer(images, state, INSTRUCTION).actions for g, r in runners.items()}
    measured = {g: {'jump': [], 'step': [], 'mismatch': [], 'ms': []} for g in runners}
    for k in range(switches):
        for guided in (False, True) if k % 2 == 0 else (True, False):
            previous = chunks[guided][horizon:]  # the previous plan for the new chunk's times
            start = time.perf_counter()
            if guided:
                chunk = (
                    runners[guided]
                    .infer(images, state, INSTRUCTION, previous=previous, delay=delay)
                    .actions
                )
            else:
                chunk = runners[guided].infer(images, state, INSTRUCTION).actions
            m = measured[guided]
            m['ms'].append(ms_since(start))
            # Executed: previous[0 .. delay-1] while inferring, then chunk[delay ..].
            m['jump'].append(np.abs(chunk[delay] - previous[delay - 1]).mean())
            m['step'].append(np.abs(np.diff(chunk[delay : delay + horizon], axis=0)).mean())
            m['mismatch'].append(np.abs(chunk[:delay] - previous[:delay]).mean())
            chunks[guided] = chunk
    modes = []
    for guided, m in measured.items():
        step = float(np.mean(m['step']))
        modes.append(
            {
                'guided': guided,
                'switches': switches,
                'jump_mean_rad': float(np.mean(m['jump'])),
                'jump_p95_rad': float(np.percentile(m['jump'], 95)),
                'step_mean_rad': step,
                'jump_over_step': float(np.mean(m['jump'])) / step,
                'first_delay_mismatch_rad': float(np.mean(m['mismatch'])),
                'infer_ms_p50': float(np.median(m['ms'])),
            }
        )
    return modes


def measure_rtc(args: argparse.Namespace) -> dict:
    length = PRESETS['tiny']['chunk_length']
    if not 0 < args.delay <= args.horizon or args.horizon + args.delay > length:
        raise SystemExit(f'need 0 < delay <= horizon and horizon + delay <= {length}')
    model, normalizer, training = train_tiny(args.rtc_steps, args.rtc_batch, args.seed)
    runners = {
        g: PolicyRunner(model, normalizer, seed=args.seed, cuda_graph=False) for g in (False, True)
    }
    observation = inputs(model.config, args.seed + 2, count=1)[0]
    modes = simulate(runners, observation, args.switches, args.delay, args.horizon)
    return {
        'training': training,
        'delay': args.delay,
        'horizon': args.horizon,
        'chunk_length': length,
        'flow_steps': model.config.flow_steps,
        'fps': model.config.fps,
        'modes': modes,
        'jump_ratio_unguided_over_guided': modes[0]['jump_mean_rad'] / modes[1]['jump_mean_rad'],
    }


# --- report ------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    # Quiet the weight-loading progress bars of the pretrained encoders (imported lazily).
    os.environ.setdefault('HF_HUB_DISABLE_PROGRESS_BARS', '1')
    os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(
        f'machine: {os.cpu_count()} cores {platform.machine()}, Python '
        f'{platform.python_version()}, torch {torch.__version__}, {args.threads} thread(s), '
        f'CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else "none"}'
    )
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict = {'threads': args.threads, 'torch': torch.__version__, 'args': options}

    def reps(preset: str) -> tuple[int, int]:
        if preset in SLOW_PRESETS:
            return args.slow_repeats, min(args.warmup, 2)
        return args.repeats, args.warmup

    print('\n### Latency per chunk (CPU, PolicyRunner.infer, random init)\n')
    print('Split: the same work timed by part; flow = K Euler steps of the action expert.\n')
    print(
        '| preset | params | calls | infer p50 | p99 | preprocess p50 | prefix p50 | '
        'flow (K steps) p50 | per step |'
    )
    print('|---|---|---|---|---|---|---|---|---|')
    latency = []
    for preset in args.presets:
        repeats, warmup = reps(preset)
        r = measure_latency(preset, repeats, warmup, args.seed)
        latency.append(r)
        p50, p99 = r['infer_p50_p99_ms']
        flow = r['flow_p50_p99_ms'][0]
        print(
            f'| {preset} | {r["parameters_m"]:.1f} M | {repeats} | {p50:.1f} ms | {p99:.1f} ms '
            f'| {r["preprocess_p50_p99_ms"][0]:.1f} ms | {r["prefix_p50_p99_ms"][0]:.1f} ms | '
            f'{flow:.1f} ms (K={r["flow_steps"]}) | {flow / r["flow_steps"]:.1f} ms |',
            flush=True,
        )
    results['latency'] = latency
    for r in latency:
        if r['preset'] == TARGET_PRESET:
            p99 = r['infer_p50_p99_ms'][1]
            verdict = 'PASS' if p99 < TARGET_P99_MS else 'FAIL'
            results['target'] = {
                'preset': TARGET_PRESET,
                'p99_ms': p99,
                'pass': p99 < TARGET_P99_MS,
            }
            print(f'\n{verdict}: {TARGET_PRESET} p99 {p99:.1f} ms (target < {TARGET_P99_MS:g} ms)')

    print('\n### Prefix cache (CPU, model.sample, interleaved pairs)\n')
    print(
        '| preset | pairs | cached p50 | uncached p50 | speed-up (median ratio) | same actions |'
    )
    print('|---|---|---|---|---|---|')
    cache = []
    for preset in args.presets:
        pairs = args.slow_cache_repeats if preset in SLOW_PRESETS else args.cache_repeats
        r = measure_prefix_cache(preset, pairs, reps(preset)[1], args.seed)
        cache.append(r)
        print(
            f'| {preset} | {pairs} | {r["cached_ms_p50"]:.1f} ms | {r["uncached_ms_p50"]:.1f} ms '
            f'| {r["speedup_median"]:.2f}x | {"yes" if r["identical_actions"] else "NO"} |',
            flush=True,
        )
    results['prefix_cache'] = cache

    print('\n### CUDA graph (PolicyRunner, bf16, interleaved)\n')
    if torch.cuda.is_available():
        print('| preset | calls | graph p50 | p99 | eager p50 | p99 | speed-up (median ratio) |')
        print('|---|---|---|---|---|---|---|')
        graph = []
        for preset in args.presets:
            r = measure_cuda_graph(preset, args.repeats, args.warmup, args.seed)
            graph.append(r)
            g50, g99 = r['graph_p50_p99_ms']
            e50, e99 = r['eager_p50_p99_ms']
            print(
                f'| {preset} | {r["calls"]} | {g50:.2f} ms | {g99:.2f} ms | {e50:.2f} ms | '
                f'{e99:.2f} ms | {r["speedup_median"]:.2f}x |',
                flush=True,
            )
        results['cuda_graph'] = graph
    else:
        print('Not measured on this machine: torch.cuda.is_available() is False.')
        results['cuda_graph'] = None

    print('\n### Real-time chunking (tiny preset trained on a multimodal sinusoid task)\n')
    r = measure_rtc(args)
    results['rtc'] = r
    t = r['training']
    print(
        f'Training: {t["steps"]} AdamW steps, batch {t["batch"]}, {t["train_s"]:.0f} s; '
        f'flow loss {t["loss_first"]:.3f} -> {t["loss_last"]:.3f}. Execution: chunk of '
        f'{r["chunk_length"]} at {r["fps"]:g} fps, K={r["flow_steps"]}, delay d={r["delay"]}, '
        f'{r["horizon"]} actions executed per chunk, {args.switches} switches per mode, one '
        f'fixed observation. Per-step change of the task itself: '
        f'{t["task_step_rad"] * 1e3:.1f} mrad.\n'
    )
    print(
        '| guidance | jump mean | jump p95 | step inside chunk | jump / step | '
        'mismatch on the first d | infer p50 |'
    )
    print('|---|---|---|---|---|---|---|')
    for m in r['modes']:
        print(
            f'| {"RTC (previous, delay)" if m["guided"] else "none"} | '
            f'{m["jump_mean_rad"] * 1e3:.1f} mrad | {m["jump_p95_rad"] * 1e3:.1f} mrad | '
            f'{m["step_mean_rad"] * 1e3:.1f} mrad | {m["jump_over_step"]:.2f} | '
            f'{m["first_delay_mismatch_rad"] * 1e3:.1f} mrad | {m["infer_ms_p50"]:.1f} ms |'
        )
    print(
        '\nJump = |new[d] - previous[d-1]| (first new action after the last one of the previous '
        'chunk), mean over joints, per switch; step = mean |a[i+1] - a[i]| over the executed '
        'actions; mismatch = mean |new[i] - previous[i]| for i < d (executed from the previous '
        'chunk anyway). Both chains share the noise and are run interleaved.'
    )
    print(f'\nMean jump without / with guidance: {r["jump_ratio_unguided_over_guided"]:.1f}x')

    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + '\n')
        print(f'\nJSON: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
