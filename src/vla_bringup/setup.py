from glob import glob

from setuptools import find_packages
from setuptools import setup

package_name = 'vla_bringup'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{package_name}']),
        (f'share/{package_name}', ['package.xml']),
        # Top-level launch/ and config/ (symlinked here) are installed with this package.
        (f'share/{package_name}/launch', glob('launch/*.launch.py')),
        (f'share/{package_name}/config/robots', glob('config/robots/*.yaml')),
        (f'share/{package_name}/config/cameras', glob('config/cameras/*.yaml')),
        (f'share/{package_name}/config/dds', glob('config/dds/*.xml')),
        (f'share/{package_name}/config/ros2_control', glob('config/ros2_control/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='vla_stack developers',
    maintainer_email='dev@vla-stack.invalid',
    description=(
        'The node graph of the stack, shared by robot.launch.py and the vla runner; installs '
        'the top-level launch/ and config/.'
    ),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'vla = vla_bringup.cli:main',
        ],
    },
)
