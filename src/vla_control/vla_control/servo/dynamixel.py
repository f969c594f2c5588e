"""Dynamixel X-series servos (ALOHA: XM430-W350, XL430-W250) through dynamixel-sdk, protocol 2.0.

The ALOHA arms' doubled shoulder and elbow servos follow their primary through the servos'
Secondary (Shadow) ID setting, so a calibration names only the primary id of each joint.
"""

from __future__ import annotations

from vla_control.servo.bus import SdkServoBus
from vla_control.servo.models import XM430_W350


class DynamixelBus(SdkServoBus):
    sdk_module = 'dynamixel_sdk'
    protocol = 2.0
    model = XM430_W350  # the XL430-W250 has the same registers
