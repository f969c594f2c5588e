import sys
from types import SimpleNamespace

import numpy as np
import pytest

from vla_perception.image_conversion import ENCODINGS
from vla_perception.image_conversion import UnsupportedEncodingError
from vla_perception.image_conversion import from_rgb8
from vla_perception.image_conversion import image_to_numpy
from vla_perception.image_conversion import numpy_to_image
from vla_perception.image_conversion import to_rgb8


def _random_pixels(encoding, height=5, width=7, seed=0):
    layout = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (height, width) if layout.channels == 1 else (height, width, layout.channels)
    if layout.dtype.kind == 'f':
        return rng.standard_normal(shape).astype(layout.dtype)
    return rng.integers(0, np.iinfo(layout.dtype).max, shape, endpoint=True).astype(layout.dtype)


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_round_trip_is_exact_for_every_encoding(encoding):
    pixels = _random_pixels(encoding)
    msg = numpy_to_image(pixels, encoding, SimpleNamespace())
    assert msg.encoding == encoding
    assert (msg.height, msg.width) == pixels.shape[:2]
    assert msg.step == pixels.shape[1] * pixels[0, 0].nbytes
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)


def test_round_trip_through_a_serialized_sensor_msgs_image():
    from rclpy.serialization import deserialize_message
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    pixels = _random_pixels('rgb8', 48, 64)
    wire = serialize_message(numpy_to_image(pixels, 'rgb8', Image()))
    np.testing.assert_array_equal(image_to_numpy(deserialize_message(wire, Image)), pixels)


def test_row_padding_is_stripped():
    pixels = _random_pixels('rgb8', 4, 3)
    padded = np.zeros((4, 3 * 3 + 7), dtype=np.uint8)  # 9 bytes of pixels + 7 of padding
    padded[:, :9] = pixels.reshape(4, 9)
    padded[:, 9:] = 0xEE
    msg = SimpleNamespace(
        height=4, width=3, encoding='rgb8', is_bigendian=0, step=16, data=padded.tobytes()
    )
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)


def test_big_endian_mono16_is_read_by_value():
    values = np.array([[1, 256, 65535]], dtype=np.uint16)
    msg = SimpleNamespace(
        height=1,
        width=3,
        encoding='mono16',
        is_bigendian=1,
        step=6,
        data=values.astype('>u2').tobytes(),
    )
    result = image_to_numpy(msg)
    np.testing.assert_array_equal(result, values)
    assert result.dtype.isnative


def test_receive_path_does_not_copy():
    pixels = _random_pixels('rgb8', 8, 8)
    msg = numpy_to_image(pixels, 'rgb8', SimpleNamespace())
    view = image_to_numpy(msg)
    assert np.shares_memory(view, np.frombuffer(msg.data, dtype=np.uint8))


def test_unsupported_encoding_names_the_supported_ones():
    msg = SimpleNamespace(height=1, width=1, encoding='yuv422', is_bigendian=0, step=2, data=b'ab')
    with pytest.raises(
        UnsupportedEncodingError, match=r"unsupported image encoding 'yuv422'.*rgb8"
    ):
        image_to_numpy(msg)
    with pytest.raises(UnsupportedEncodingError):
        numpy_to_image(np.zeros((2, 2, 3), np.uint8), 'bayer_rggb8', SimpleNamespace())


def test_truncated_data_and_short_step_are_errors():
    short = SimpleNamespace(
        height=2, width=2, encoding='rgb8', is_bigendian=0, step=6, data=b'x' * 11
    )
    with pytest.raises(ValueError, match='expected step\\*height = 12'):
        image_to_numpy(short)
    narrow = SimpleNamespace(
        height=2, width=2, encoding='rgb8', is_bigendian=0, step=5, data=b'x' * 10
    )
    with pytest.raises(ValueError, match='smaller than a rgb8 row'):
        image_to_numpy(narrow)


@pytest.mark.parametrize(
    ('pixels', 'encoding', 'message'),
    [
        (np.zeros((4, 4, 4), np.uint8), 'rgb8', r'shape \(H, W, 3\)'),
        (np.zeros((4, 4, 3), np.float32), 'rgb8', 'dtype uint8'),
        (np.zeros((4, 4), np.uint8), 'mono16', 'dtype uint16'),
    ],
)
def test_numpy_that_does_not_match_the_encoding_is_rejected(pixels, encoding, message):
    with pytest.raises(ValueError, match=message):
        numpy_to_image(pixels, encoding, SimpleNamespace())


def test_to_rgb8_reorders_channels_and_expands_grey():
    rgb = _random_pixels('rgb8')
    np.testing.assert_array_equal(to_rgb8(rgb[:, :, ::-1], 'bgr8'), rgb)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(to_rgb8(rgba, 'rgba8'), rgb)
    np.testing.assert_array_equal(to_rgb8(rgba[:, :, [2, 1, 0, 3]], 'bgra8'), rgb)
    grey16 = np.array([[0x1234, 0xFF00]], dtype=np.uint16)
    np.testing.assert_array_equal(to_rgb8(grey16, 'mono16'), [[[0x12] * 3, [0xFF] * 3]])
    with pytest.raises(UnsupportedEncodingError):
        to_rgb8(np.zeros((2, 2), np.float32), '32FC1')


def test_native_byte_order_is_declared():
    msg = numpy_to_image(np.zeros((1, 1), np.uint16), 'mono16', SimpleNamespace())
    assert msg.is_bigendian == int(sys.byteorder == 'big')


def test_from_rgb8_produces_each_camera_encoding():
    import cv2

    rgb = _random_pixels('rgb8', 6, 9)
    np.testing.assert_array_equal(from_rgb8(rgb, 'rgb8'), rgb)
    np.testing.assert_array_equal(to_rgb8(from_rgb8(rgb, 'bgr8'), 'bgr8'), rgb)
    grey = from_rgb8(rgb, 'mono8')
    assert grey.shape == (6, 9)
    assert np.abs(grey.astype(int) - cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)).max() <= 1
    with pytest.raises(UnsupportedEncodingError, match="cannot publish 'mono16'"):
        from_rgb8(rgb, 'mono16')


def test_padded_rows_of_a_16_bit_image():
    values = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    padded = np.zeros((3, 6), dtype=np.uint16)  # 8 bytes of pixels + 4 of padding per row
    padded[:, :4] = values
    msg = SimpleNamespace(height=3, width=4, encoding='16UC1', is_bigendian=0, step=12)
    msg.data = padded.tobytes()
    result = image_to_numpy(msg)
    np.testing.assert_array_equal(result, values)
    assert not result.flags.writeable
