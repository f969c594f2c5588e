"""End to end: `vla eval` runs the simulator, the controller and the policy node as processes.

A short closed-loop episode with a checkpoint made by `vla train`: chunks must flow from the
policy through the controller to the simulated arm, and the arm must move. Success is not
expected of a 5-step model; the full evaluation numbers come from `vla eval` on a trained one.
"""

from __future__ import annotations

import json
import shutil

import av
import pytest

pytestmark = pytest.mark.skipif(shutil.which('vla') is None, reason='the vla command is needed')


def test_vla_eval_drives_the_simulated_arm_with_the_policy(run_command, checkpoint, tmp_path):
    output = tmp_path / 'eval'
    process = run_command(
        [
            'vla',
            'eval',
            'robot:=so101',
            f'checkpoint:={checkpoint}',
            'episodes:=2',
            'timeout_s:=3',
            'video_episodes:=1',
            f'output:={output}',
        ],
        'eval',
    )
    assert process.wait_exit(timeout=180) == 0, process.output
    summary = json.loads((output / 'summary.json').read_text())
    assert summary['episodes'] == 2
    for result in summary['results']:
        assert result['chunks'] >= 3, result  # every 0.5 s for 3 s
        assert result['travel_rad'] > 0.05, f'the arm did not move: {result}'
        assert result['message'] in ('timeout', 'success')
    assert [r['seed'] for r in summary['results']] == [10000, 10001]
    assert int(summary['controller']['chunks_accepted']) >= 6
    assert summary['policy_inference_ms']['count'] >= 6
    assert (output / 'results.png').stat().st_size > 0
    with av.open(str(output / 'eval.mp4')) as video:
        frames = sum(1 for _ in video.decode(video=0))
    assert frames >= 30 * 3 * 0.5, 'about 3 s of the first episode at 30 fps'
    assert 'success' in process.output
    assert 'policy inference (ms)' in process.output
