"""Control tables of the supported servos: the few registers the drivers use.

Shared by the SDK backends and the bus emulator, so both speak the same addresses.
Sources: Feetech STS3215 memory table (as used by feetech-servo-sdk and LeRobot) and the
ROBOTIS e-Manual X-series control table (XM430-W350, XL430-W250: identical addresses).
"""

from __future__ import annotations

from dataclasses import dataclass

TICKS_PER_REVOLUTION = 4096  # both families: 12-bit magnetic encoders
BAUDRATE = 1_000_000  # factory default of the STS3215; ALOHA runs its Dynamixels at 1 Mbps


@dataclass(frozen=True)
class ServoModel:
    name: str
    protocol: str  # 'feetech' (SCS, checksum) or 'dynamixel' (protocol 2.0, CRC16)
    model_number: int  # what a ping (Dynamixel) or register `model_address` (Feetech) returns
    model_address: int
    torque_address: int  # 1 byte: 1 = torque on
    goal_address: int
    present_address: int
    position_bytes: int

    def encode_position(self, ticks: int) -> bytes:
        """Register bytes of a position (little endian)."""
        if self.protocol == 'feetech':
            # STS3215 positions are sign-magnitude with the sign in bit 15.
            magnitude = abs(ticks)
            if magnitude >= 1 << 15:
                raise ValueError(f'{self.name}: position {ticks} does not fit 15 bits')
            raw = magnitude | (1 << 15 if ticks < 0 else 0)
            return raw.to_bytes(2, 'little')
        return ticks.to_bytes(self.position_bytes, 'little', signed=True)

    def decode_position(self, data: bytes) -> int:
        if self.protocol == 'feetech':
            raw = int.from_bytes(data[:2], 'little')
            return -(raw & 0x7FFF) if raw & 0x8000 else raw
        return int.from_bytes(data[: self.position_bytes], 'little', signed=True)


STS3215 = ServoModel(
    name='STS3215',
    protocol='feetech',
    model_number=777,
    model_address=3,
    torque_address=40,
    goal_address=42,
    present_address=56,
    position_bytes=2,
)
XM430_W350 = ServoModel(
    name='XM430-W350',
    protocol='dynamixel',
    model_number=1020,
    model_address=0,
    torque_address=64,
    goal_address=116,
    present_address=132,
    position_bytes=4,
)
XL430_W250 = ServoModel(
    name='XL430-W250',
    protocol='dynamixel',
    model_number=1060,
    model_address=0,
    torque_address=64,
    goal_address=116,
    present_address=132,
    position_bytes=4,
)
# The servo model the drivers assume for each bus protocol (one register layout per protocol).
BUS_MODELS = {'feetech': STS3215, 'dynamixel': XM430_W350}
