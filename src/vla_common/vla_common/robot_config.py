"""Robot configuration files (config/robots/<robot>.yaml): where they are and how to read them.

One reader for every package: the graph takes the cameras from it, the controller the joints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from vla_common.errors import ConfigError


def config_dir() -> Path:
    """$VLA_CONFIG_DIR, else the installed `share/vla_bringup/config`, else the source tree's."""
    if os.environ.get('VLA_CONFIG_DIR'):
        return Path(os.environ['VLA_CONFIG_DIR'])
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory('vla_bringup')) / 'config'
        if installed.is_dir():
            return installed
    except (ImportError, LookupError):
        pass
    # Editable install from this repository: src/vla_common/../../config.
    return Path(__file__).resolve().parents[3] / 'config'


def load_robot_config(robot: str, directory: Path | None = None) -> dict[str, Any]:
    """Read config/robots/<robot>.yaml, with errors that name the file."""
    robots = (directory or config_dir()) / 'robots'
    path = robots / f'{robot}.yaml'
    if not path.is_file():
        known = ', '.join(sorted(p.stem for p in robots.glob('*.yaml'))) or 'none'
        raise ConfigError(f'unknown robot {robot!r}: no {path}; available: {known}')
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f'malformed robot config {path}: {exc}') from None
    if not isinstance(config, dict):
        raise ConfigError(f'{path}: expected a mapping')
    for section in ('cameras', 'joints', 'control'):
        if not isinstance(config.get(section, {}), dict):
            raise ConfigError(f'{path}: "{section}" must be a mapping')
    config['_path'] = str(path)
    return config
