"""The grounding scenes file: what is not one is named, not half read."""

import numpy as np
import pytest

from vla_common.errors import ConfigError
from vla_common.grounding import GroundingScenes


def test_what_is_not_grounding_scenes_is_named(tmp_path):
    with pytest.raises(ConfigError, match='no grounding scenes'):
        GroundingScenes.load(tmp_path / 'missing.npz')
    np.savez(tmp_path / 'other.npz', images=np.zeros((1, 1, 4, 4, 3), np.uint8))
    with pytest.raises(ConfigError, match='not grounding scenes'):
        GroundingScenes.load(tmp_path / 'other.npz')
    (tmp_path / 'broken.npz').write_bytes(b'not a zip')
    with pytest.raises(ConfigError, match='cannot read'):
        GroundingScenes.load(tmp_path / 'broken.npz')
