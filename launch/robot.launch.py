"""Launch the vla_stack node graph on a ROS 2 install.

    ros2 launch vla_bringup robot.launch.py robot:=so101 mode:=cameras sim:=true

The nodes come from vla_bringup.graph, the same description that `vla bringup` runs.
"""

from launch.actions import DeclareLaunchArgument
from launch.actions import OpaqueFunction
from launch.actions import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription
from vla_bringup.graph import GRAPH_ARGUMENTS
from vla_bringup.graph import build_graph
from vla_bringup.graph import parse_arguments


def launch_nodes(context, *args, **kwargs):
    """Evaluate the launch arguments and return one launch_ros Node per graph node."""
    values = {p.name: LaunchConfiguration(p.name).perform(context) for p in GRAPH_ARGUMENTS}
    arguments = parse_arguments(values)
    gazebo = []
    if arguments['sim'] and arguments['simulator'] == 'gazebo':
        from ament_index_python.packages import get_package_share_directory
        from launch.actions import IncludeLaunchDescription
        from launch.launch_description_sources import PythonLaunchDescriptionSource

        from vla_sim.gazebo import write_world

        world = write_world(arguments['robot'])  # table, cubes and cameras of the MuJoCo scene
        gz_sim = f'{get_package_share_directory("ros_gz_sim")}/launch/gz_sim.launch.py'
        gazebo.append(
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(gz_sim),
                launch_arguments={'gz_args': f'-r {world}'}.items(),
            )
        )
    return gazebo + [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            parameters=[_typed(spec.parameters)],
            remappings=list(spec.remappings),
            arguments=list(spec.arguments),
            output='screen',
            on_exit=Shutdown(reason=f'required node {spec.name} exited')
            if spec.required
            else None,
        )
        for spec in build_graph(**arguments)
    ]


def _typed(parameters):
    """launch_ros reads plain string values as YAML ('0' -> 0); keep strings strings."""
    return {
        name: ParameterValue(value, value_type=str) if isinstance(value, str) else value
        for name, value in parameters.items()
    }


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(
            p.name,
            default_value=str(p.default).lower()
            if isinstance(p.default, bool)
            else str(p.default),
            description=p.description,
        )
        for p in GRAPH_ARGUMENTS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=launch_nodes)])
