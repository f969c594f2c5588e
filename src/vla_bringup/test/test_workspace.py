"""Workspace-wide rules: valid package manifests, working entry points, ROS-free cores."""

import importlib
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

SRC = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.name for p in SRC.iterdir() if (p / 'package.xml').is_file())
PYTHON_PACKAGES = [p for p in PACKAGES if (SRC / p / 'setup.py').is_file()]
# Modules that are the ROS side by design; every other module must import without rclpy.
ROS_MODULES = {'vla_common.node', 'vla_common.qos'}


def test_the_design_packages_exist():
    expected = {'vla_msgs', 'vla_perception', 'vla_policy', 'vla_control', 'vla_teleop', 'vla_sim'}
    assert expected | {'vla_bringup', 'vla_common'} == set(PACKAGES)


@pytest.mark.parametrize('name', PACKAGES)
def test_package_manifest_is_valid(name):
    package = parse_package(str(SRC / name / 'package.xml'))
    package.validate()
    assert package.name == name
    build_type = package.get_build_type()
    assert build_type == ('ament_cmake' if name == 'vla_msgs' else 'ament_python')
    assert (SRC / name / 'test').is_dir()
    if build_type == 'ament_python':
        assert (SRC / name / 'resource' / name).is_file()
        assert f"package_name = '{name}'" in (SRC / name / 'setup.py').read_text()


@pytest.mark.parametrize('name', PYTHON_PACKAGES)
def test_console_scripts_resolve_to_callables(name):
    scripts = [
        ep
        for ep in importlib.metadata.distribution(name).entry_points
        if ep.group == 'console_scripts'
    ]
    declared = re.findall(r"'(\w+) = ", (SRC / name / 'setup.py').read_text())
    assert sorted(ep.name for ep in scripts) == sorted(declared)
    for entry_point in scripts:
        assert callable(entry_point.load())


# Python modules -> the rosdep key a package.xml names for them.
ROSDEP_KEYS = {
    'numpy': 'python3-numpy',
    'yaml': 'python3-yaml',
    'cv2': 'python3-opencv',
    'serial': 'python3-serial',
    'dynamixel_sdk': 'dynamixel_sdk',
}
# Python modules with no rosdep key: a comment in package.xml must name their pip package.
PIP_ONLY = {'scservo_sdk': 'feetech-servo-sdk'}
ROS_MODULE = re.compile(r'^(rclpy|ament_index_python|vla_\w+|\w+_msgs|\w+_srvs|\w+_interfaces)$')
IMPORT = re.compile(r'^\s*(?:from|import) (\w+)', re.M)
# Modules imported by name at run time: the servo SDKs (only the one a robot needs is loaded).
DYNAMIC_IMPORT = re.compile(r"""(?:sdk_module\s*=\s*|import_module\()['"](\w+)""")


def package_modules(name):
    """(module name, path) of every module of a Python package, subpackages included."""
    root = SRC / name / name
    for path in sorted(root.rglob('*.py')):
        parts = path.relative_to(root).with_suffix('').parts
        yield '.'.join((name, *parts)).removesuffix('.__init__'), path


@pytest.mark.parametrize('name', PYTHON_PACKAGES)
def test_exec_depends_cover_what_a_package_imports(name):
    manifest = SRC / name / 'package.xml'
    depends = {d.name for d in parse_package(str(manifest)).exec_depends}
    comments = ' '.join(re.findall(r'<!--(.*?)-->', manifest.read_text(), re.S))
    for module, path in package_modules(name):
        text = path.read_text()
        modules = set(IMPORT.findall(text)) | set(DYNAMIC_IMPORT.findall(text))
        needed = {ROSDEP_KEYS[m] for m in modules if m in ROSDEP_KEYS}
        needed |= {m for m in modules if ROS_MODULE.match(m) and m != name}
        missing = needed - depends
        assert not missing, f'{module} imports {missing}: add <exec_depend> to package.xml'
        for pip_only in sorted(modules & set(PIP_ONLY)):
            assert PIP_ONLY[pip_only] in comments, (
                f'{module} imports {pip_only}, which has no rosdep key: say in a package.xml '
                f'comment that it comes from pip ({PIP_ONLY[pip_only]})'
            )


def core_modules():
    for name in PYTHON_PACKAGES:
        for module, path in package_modules(name):
            if not path.stem.endswith('_node') and module not in ROS_MODULES:
                yield module


def test_subpackages_are_checked_too():
    assert {'vla_control.servo', 'vla_control.servo.bus'} <= set(core_modules())


@pytest.mark.parametrize('module', list(core_modules()))
def test_core_module_imports_without_rclpy(module):
    code = f"import sys, {module}; sys.exit('rclpy' in sys.modules)"
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, f'{module} pulls in rclpy: {result.stderr}'
