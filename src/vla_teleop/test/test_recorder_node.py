"""Recording the simulated expert through the real graph: sim -> teleop -> recorder."""

import time

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from std_msgs.msg import Bool

from vla_common.qos import STATE_QOS
from vla_msgs.srv import StartEpisode
from vla_msgs.srv import StopEpisode

pytestmark = pytest.mark.ros

CAMERA = {'cameras': ['front'], 'width': 160, 'height': 120}


def call(ros, srv_type, name, request):
    client = ros.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=20), f'{name} not available'
    future = client.call_async(request)
    ros.wait_for(future.done, 20, f'{name} to answer')
    return future.result()


@pytest.fixture
def graph(ros, launch_node, tmp_path):
    success = ros.subscribe(Bool, 'sim/success', STATE_QOS)
    sim = launch_node(
        'vla_sim', 'sim_node', name='sim', params={'expert': True, 'seed': 2, **CAMERA}
    )
    launch_node('vla_teleop', 'teleop_node', name='teleop')
    recorder = launch_node(
        'vla_teleop',
        'recorder_node',
        name='recorder',
        params={'dataset_dir': str(tmp_path / 'dataset'), **CAMERA},
    )
    return success, sim, recorder, tmp_path / 'dataset'


def start_when_ready(ros):
    """Start an episode once every source has arrived (discovery takes a few seconds)."""
    deadline = time.monotonic() + 30
    while True:
        answer = call(ros, StartEpisode, 'recorder/start_episode', StartEpisode.Request())
        if answer.success or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def test_an_expert_episode_is_recorded_and_reads_back(ros, graph):
    success, sim, recorder, root = graph
    started = start_when_ready(ros)
    assert started.success, started.message
    assert 'pick up the' in started.message, 'the task comes from vla/instruction'
    # generous: the plan takes 8.2 s of sim time, and a loaded machine runs the sim slower
    ros.wait_for(
        lambda: any(m.data for m in list(success)),
        90,
        'the expert to succeed',
        lambda: sim.output,
    )
    stopped = call(ros, StopEpisode, 'recorder/stop_episode', StopEpisode.Request(keep=True))
    assert stopped.success, stopped.message
    assert stopped.num_frames > 60

    rows = pq.read_table(root / 'data/chunk-000/file-000.parquet').to_pylist()
    assert len(rows) == stopped.num_frames
    assert [r['frame_index'] for r in rows] == list(range(len(rows)))
    with av.open(str(root / 'videos/observation.images.front/chunk-000/file-000.mp4')) as video:
        frames = list(video.decode(video=0))
    assert len(frames) == len(rows)
    assert frames[0].to_ndarray(format='rgb24').shape == (120, 160, 3)
    state = np.array([r['observation.state'] for r in rows])
    action = np.array([r['action'] for r in rows])
    assert np.ptp(state[:, :5], axis=0).max() > 0.05, 'the arm moved'
    assert action[:, 5].min() < 0.0 < action[:, 5].max(), 'the gripper opened and closed'
    # the follower tracks the commands it was given
    assert np.median(np.abs(state[10:, :5] - action[10:, :5])) < 0.05
    tasks = pq.read_table(root / 'meta/tasks.parquet').to_pandas()
    assert list(tasks.index) == [started.message.split('"')[1]]
    assert 'saved episode 0' in recorder.output


def test_a_source_going_silent_discards_the_episode(ros, graph):
    _, sim, recorder, root = graph
    assert start_when_ready(ros).success
    time.sleep(1.0)
    sim.stop()  # joint states and images stop
    ros.wait_for(lambda: 'episode discarded' in recorder.output, 10, 'the recorder to give up')
    stopped = call(ros, StopEpisode, 'recorder/stop_episode', StopEpisode.Request(keep=True))
    assert not stopped.success
    assert 'episode discarded: no data from' in stopped.message
    assert not (root / 'data').exists() or not list(root.glob('data/*/*.parquet'))
    assert recorder.process.poll() is None, 'the recorder keeps running'
