"""`vla eval`, the ROS-free part: arguments, per-episode results, the summary and its plot.

An evaluation runs N seeded episodes closed-loop through the whole graph (sim, policy node,
controller). Seeds start at 10000 by default, away from the seeds `vla record` uses (0, ...),
so the policy is judged on scenes it was not trained on.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vla_common.params import Param

EVAL_ARGUMENTS = (
    Param('episodes', 10, 'Number of evaluation episodes.'),
    Param('seed', 10000, 'Seed of the first scene (then seed + 1, ...).'),
    Param('timeout_s', 20.0, 'An episode fails when it has not succeeded by then.'),
    Param('output', 'outputs/eval', 'Directory for summary.json, results.png and the video.'),
    Param('video_episodes', 0, 'Write the first N episodes to eval.mp4, instruction overlaid.'),
)


@dataclass
class EpisodeResult:
    seed: int
    instruction: str
    success: bool
    wrong_object: bool
    time_s: float
    """Time to success, or the time it ran when it failed."""
    chunks: int
    travel_rad: float
    """The largest range any joint moved through during the run (did the arm move at all)."""
    message: str


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    p50, p99 = np.percentile(values, [50, 99])
    return {'p50': round(float(p50), 2), 'p99': round(float(p99), 2), 'count': len(values)}


def summarize(
    results: list[EpisodeResult],
    inference_ms: list[float],
    chunk_delay_ms: list[float],
    controller: dict[str, str],
) -> dict[str, Any]:
    """Success per instruction and overall, wrong-object rate, time to success, latency."""
    per_instruction = {}
    for instruction in sorted({r.instruction for r in results}):
        group = [r for r in results if r.instruction == instruction]
        per_instruction[instruction] = {
            'episodes': len(group),
            'success_rate': sum(r.success for r in group) / len(group),
            'wrong_object_rate': sum(r.wrong_object for r in group) / len(group),
        }
    successes = [r.time_s for r in results if r.success]
    n = max(len(results), 1)
    return {
        'episodes': len(results),
        'success_rate': sum(r.success for r in results) / n,
        'wrong_object_rate': sum(r.wrong_object for r in results) / n,
        'per_instruction': per_instruction,
        'time_to_success_s': _percentiles(successes),
        'policy_inference_ms': _percentiles(inference_ms),
        'chunk_delay_ms': _percentiles(chunk_delay_ms),
        'controller': controller,
        'results': [asdict(r) for r in results],
    }


def summary_text(summary: dict[str, Any]) -> str:
    """The lines `vla eval` prints at the end."""

    def pct(value: float) -> str:
        return f'{100 * value:.0f} %'

    lines = [
        f'episodes {summary["episodes"]}: success {pct(summary["success_rate"])}, '
        f'wrong object {pct(summary["wrong_object_rate"])}'
    ]
    for instruction, group in summary['per_instruction'].items():
        lines.append(
            f'  "{instruction}": {group["episodes"]} episodes, success '
            f'{pct(group["success_rate"])}, wrong object {pct(group["wrong_object_rate"])}'
        )
    for key, label in (
        ('time_to_success_s', 'time to success (s)'),
        ('policy_inference_ms', 'policy inference (ms)'),
        ('chunk_delay_ms', 'observation -> chunk received (ms)'),
    ):
        value = summary[key]
        if value:
            lines.append(f'{label}: p50 {value["p50"]}, p99 {value["p99"]}')
    controller = summary['controller']
    if controller:
        lines.append(
            f'controller: chunks accepted {controller.get("chunks_accepted", "?")}, rejected '
            f'{controller.get("chunks_rejected", "?")}, loop overruns '
            f'{controller.get("loop_overruns", "?")}'
        )
    return '\n'.join(lines)


def write_summary(summary: dict[str, Any], output: Path, inference_ms: list[float]) -> None:
    """summary.json and results.png (success per instruction, latency histogram)."""
    output.mkdir(parents=True, exist_ok=True)
    (output / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    groups = summary['per_instruction']
    names = list(groups)
    x = np.arange(len(names))
    left.bar(x - 0.2, [groups[n]['success_rate'] for n in names], 0.4, label='success')
    left.bar(x + 0.2, [groups[n]['wrong_object_rate'] for n in names], 0.4, label='wrong object')
    left.set_xticks(x, [f'{n}\n({groups[n]["episodes"]} ep.)' for n in names], fontsize=8)
    left.set_ylim(0, 1)
    left.set_ylabel('rate')
    left.set_title(f'{summary["episodes"]} episodes: success {summary["success_rate"]:.0%}')
    left.legend()
    if inference_ms:
        right.hist(inference_ms, bins=40)
        right.set_xlabel('policy inference per chunk (ms)')
        right.set_ylabel('chunks')
    fig.tight_layout()
    fig.savefig(output / 'results.png', dpi=100)
    plt.close(fig)


def overlay(rgb: np.ndarray, lines: list[str]) -> np.ndarray:
    """A copy of the frame with text lines on a dark band at the top (for the eval video)."""
    import cv2

    frame = np.ascontiguousarray(rgb).copy()
    scale = max(frame.shape[1] / 640.0, 0.35)
    band = int(22 * scale * len(lines) + 6)
    frame[:band] = (frame[:band] * 0.35).astype(np.uint8)
    for i, text in enumerate(lines):
        origin = (6, int(18 * scale + i * 22 * scale))
        cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (255, 255, 255))
    return frame
