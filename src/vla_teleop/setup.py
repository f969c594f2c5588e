from setuptools import find_packages
from setuptools import setup

package_name = 'vla_teleop'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{package_name}']),
        (f'share/{package_name}', ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='vla_stack developers',
    maintainer_email='dev@vla-stack.invalid',
    description=('Leader-follower teleoperation, the episode recorder and dataset writers.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'teleop_node = vla_teleop.teleop_node:main',
            'recorder_node = vla_teleop.recorder_node:main',
        ],
    },
)
