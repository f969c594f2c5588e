from setuptools import find_packages
from setuptools import setup

package_name = 'vla_policy'

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
    entry_points={
        'console_scripts': [
            'policy_node = vla_policy.policy_node:main',
        ],
    },
    maintainer='vla_stack developers',
    maintainer_email='dev@vla-stack.invalid',
    description=('The VLA model, inference engine, checkpoints, training and the policy node.'),
    license='Apache-2.0',
)
