"""Feetech STS3215 servos (SO-100/SO-101) through feetech-servo-sdk (`scservo_sdk`)."""

from __future__ import annotations

from vla_control.servo.bus import SdkServoBus
from vla_control.servo.models import STS3215


class FeetechBus(SdkServoBus):
    sdk_module = 'scservo_sdk'
    protocol = 0  # PacketHandler(0): little-endian registers, as the STS series uses
    model = STS3215

    def _transfer(self, call):
        # Unlike dynamixel-sdk, scservo_sdk does not drop unread input before sending, so a
        # late reply to a timed-out transfer would be taken for the answer to this one.
        def fresh():
            self._port.ser.reset_input_buffer()
            return call()

        return super()._transfer(fresh)
