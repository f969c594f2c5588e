from setuptools import find_packages
from setuptools import setup

package_name = 'vla_perception'

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
        'Camera ingestion (USB/V4L2 via OpenCV, video files, test pattern) and image-to-numpy '
        'conversion used instead of cv_bridge.'
    ),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'camera_node = vla_perception.camera_node:main',
        ],
    },
)
