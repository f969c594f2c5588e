from setuptools import find_packages
from setuptools import setup

package_name = 'vla_control'

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
    description=(
        'Action-chunk execution, interpolation, safety filter, PD, watchdog, controller node '
        'and servo drivers.'
    ),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'controller_node = vla_control.controller_node:main',
            'driver_node = vla_control.driver_node:main',
            'vla_calibrate = vla_control.servo.cli:main',
        ],
    },
)
