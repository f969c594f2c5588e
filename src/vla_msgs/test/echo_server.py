"""A separate process that answers on every vla_msgs interface, for the round-trip test.

- ActionChunk on `chunk_in` is republished unchanged on `chunk_out`.
- StartEpisode / StopEpisode / ResetScene services echo their request into the response.
- RunInstruction sends two feedbacks and succeeds for a non-empty instruction.
"""

import time

import rclpy
from rclpy.action import ActionServer
from rclpy.executors import ExternalShutdownException
from rclpy.executors import MultiThreadedExecutor

from vla_msgs.action import RunInstruction
from vla_msgs.msg import ActionChunk
from vla_msgs.srv import ResetScene
from vla_msgs.srv import StartEpisode
from vla_msgs.srv import StopEpisode


def main():
    rclpy.init()
    node = rclpy.create_node('vla_msgs_echo')
    publisher = node.create_publisher(ActionChunk, 'chunk_out', 10)
    node.create_subscription(ActionChunk, 'chunk_in', publisher.publish, 10)

    def start(request, response):
        response.success = True
        response.episode_index = len(request.instruction)
        response.message = request.instruction.upper()
        return response

    def stop(request, response):
        response.success = request.keep
        response.num_frames = 42
        response.message = 'kept' if request.keep else 'discarded'
        return response

    def reset(request, response):
        response.success = True
        response.instruction = f'{request.task} seed {request.seed}'
        return response

    def run(goal):
        time.sleep(0.3)  # let the client's feedback subscription match first
        for count in (1, 2):
            feedback = RunInstruction.Feedback(elapsed_s=0.1 * count, chunks_executed=count)
            goal.publish_feedback(feedback)
            time.sleep(0.05)
        goal.succeed()
        return RunInstruction.Result(
            success=bool(goal.request.instruction),
            elapsed_s=float(goal.request.timeout.sec),
            message='success',
        )

    node.create_service(StartEpisode, 'recorder/start_episode', start)
    node.create_service(StopEpisode, 'recorder/stop_episode', stop)
    node.create_service(ResetScene, 'sim/reset', reset)
    ActionServer(node, RunInstruction, 'vla/run_instruction', run)
    print('echo server ready', flush=True)
    try:
        rclpy.spin(node, executor=MultiThreadedExecutor())
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
