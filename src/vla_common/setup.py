from setuptools import find_packages
from setuptools import setup

package_name = 'vla_common'

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
        'Shared plumbing of the vla_stack nodes: parameter tables, the node entry-point '
        'wrapper, QoS profiles and diagnostics helpers.'
    ),
    license='Apache-2.0',
)
