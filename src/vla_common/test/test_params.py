import pytest

from vla_common.errors import ConfigError
from vla_common.params import Param
from vla_common.params import coerce
from vla_common.params import resolve

TABLE = (
    Param('fps', 30.0, 'rate'),
    Param('name', 'cam', 'name'),
    Param('loop', True, 'loop'),
    Param('size', 4, 'size'),
    Param('joints', ['a'], 'joints'),
)


def test_defaults_when_nothing_overridden():
    assert resolve(TABLE, {}) == {
        'fps': 30.0,
        'name': 'cam',
        'loop': True,
        'size': 4,
        'joints': ['a'],
    }


def test_int_accepted_for_float_and_converted():
    value = coerce(TABLE[0], 30)
    assert value == 30.0
    assert isinstance(value, float)


@pytest.mark.parametrize(
    ('param', 'value'),
    [(TABLE[0], '30'), (TABLE[0], True), (TABLE[2], 1), (TABLE[3], 4.5), (TABLE[4], 'a')],
)
def test_wrong_types_are_reported_with_the_parameter_name(param, value):
    with pytest.raises(ConfigError, match=param.name):
        coerce(param, value)


def test_unknown_override_names_the_typo_and_the_known_names():
    with pytest.raises(ConfigError, match=r'unknown parameter\(s\) fsp; known: fps, joints'):
        resolve(TABLE, {'fsp': 1.0})
