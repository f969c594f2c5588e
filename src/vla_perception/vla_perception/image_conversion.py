"""sensor_msgs/Image <-> numpy without cv_bridge, used by every package of the stack.

Works on any object with the Image fields (height, width, encoding, is_bigendian, step, data),
so it needs no ROS import. `image_to_numpy` returns a view of the message buffer when it can
(no copy on the receive path); `numpy_to_image` fills an existing message in place.
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Encoding:
    """Layout of one pixel encoding: element type and channels per pixel."""

    dtype: np.dtype
    channels: int


ENCODINGS: dict[str, Encoding] = {
    'rgb8': Encoding(np.dtype(np.uint8), 3),
    'bgr8': Encoding(np.dtype(np.uint8), 3),
    'rgba8': Encoding(np.dtype(np.uint8), 4),
    'bgra8': Encoding(np.dtype(np.uint8), 4),
    'mono8': Encoding(np.dtype(np.uint8), 1),
    '8UC1': Encoding(np.dtype(np.uint8), 1),
    'mono16': Encoding(np.dtype(np.uint16), 1),
    '16UC1': Encoding(np.dtype(np.uint16), 1),
    '32FC1': Encoding(np.dtype(np.float32), 1),
}


class UnsupportedEncodingError(ValueError):
    """The image encoding is not one this module converts."""


def encoding_info(encoding: str) -> Encoding:
    """Return the layout of `encoding`, or raise UnsupportedEncodingError naming the options."""
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise UnsupportedEncodingError(
            f'unsupported image encoding {encoding!r}; supported: {", ".join(ENCODINGS)}'
        ) from None


def image_to_numpy(msg: Any) -> np.ndarray:
    """Return the pixels of an Image-like message as an array of shape (H, W) or (H, W, C).

    Row padding (`step` larger than a packed row) is stripped. The result is a read-only view
    of `msg.data` when the byte order matches this machine's, otherwise a byteswapped copy.
    """
    layout = encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * layout.channels * layout.dtype.itemsize
    if step < row_bytes:
        raise ValueError(
            f'image step {step} is smaller than a {msg.encoding} row of width {width} '
            f'({row_bytes} bytes)'
        )
    buffer = memoryview(msg.data).cast('B')
    if len(buffer) < step * height:
        raise ValueError(
            f'image data has {len(buffer)} bytes, expected step*height = {step * height}'
        )
    dtype = layout.dtype.newbyteorder('>' if msg.is_bigendian else '<')
    itemsize = dtype.itemsize
    pixels = np.ndarray(  # a strided view skips the row padding without copying
        (height, width, layout.channels),
        dtype=dtype,
        buffer=buffer,
        strides=(step, layout.channels * itemsize, itemsize),
    )
    pixels.flags.writeable = False  # a view of the message: copy before changing it
    if not dtype.isnative:
        pixels = pixels.astype(layout.dtype)
    return pixels[:, :, 0] if layout.channels == 1 else pixels


def numpy_to_image(pixels: np.ndarray, encoding: str, msg: Any) -> Any:
    """Fill the Image-like `msg` with `pixels` in `encoding` (packed rows, native byte order).

    Returns `msg`. The array's shape and dtype must match the encoding exactly: no silent
    conversion of colour order or depth.
    """
    layout = encoding_info(encoding)
    expected_ndim = 2 if layout.channels == 1 else 3
    if pixels.ndim == 3 and layout.channels == 1 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim != expected_ndim or (
        layout.channels > 1 and pixels.shape[2] != layout.channels
    ):
        shape = '(H, W)' if layout.channels == 1 else f'(H, W, {layout.channels})'
        raise ValueError(f'{encoding} needs an array of shape {shape}, got {pixels.shape}')
    if pixels.dtype != layout.dtype:
        raise ValueError(f'{encoding} needs dtype {layout.dtype}, got {pixels.dtype}')
    contiguous = np.ascontiguousarray(pixels)
    msg.height, msg.width = int(contiguous.shape[0]), int(contiguous.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big')
    msg.step = msg.width * layout.channels * layout.dtype.itemsize
    data = array.array('B')
    data.frombytes(memoryview(contiguous).cast('B'))
    msg.data = data
    return msg


# Encodings a camera can publish its RGB frames in (see from_rgb8).
CAMERA_ENCODINGS = ('rgb8', 'bgr8', 'mono8')


def from_rgb8(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an RGB uint8 frame (H, W, 3) to one of CAMERA_ENCODINGS."""
    if encoding == 'rgb8':
        return rgb
    if encoding == 'bgr8':
        return rgb[:, :, ::-1]
    if encoding == 'mono8':  # ITU-R BT.601 luma, as OpenCV's RGB2GRAY
        weights = np.array([299, 587, 114], dtype=np.uint32)
        return ((rgb.astype(np.uint32) @ weights + 500) // 1000).astype(np.uint8)
    raise UnsupportedEncodingError(
        f'a camera cannot publish {encoding!r}; choose one of {", ".join(CAMERA_ENCODINGS)}'
    )


def to_rgb8(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an array in any supported colour encoding to RGB uint8 of shape (H, W, 3)."""
    layout = encoding_info(encoding)
    if encoding == 'rgb8':
        return pixels
    if encoding == 'bgr8':
        return pixels[:, :, ::-1]
    if encoding == 'rgba8':
        return pixels[:, :, :3]
    if encoding == 'bgra8':
        return pixels[:, :, 2::-1]
    if layout.dtype == np.uint8:
        grey = pixels
    elif layout.dtype == np.uint16:
        grey = (pixels >> 8).astype(np.uint8)
    else:
        raise UnsupportedEncodingError(f'{encoding} is not a colour or grey image')
    return np.repeat(grey[:, :, None], 3, axis=2)
