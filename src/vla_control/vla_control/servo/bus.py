"""The servo bus seam: raw ticks in and out of one serial bus, one backend per servo family.

`ServoBus` is what the driver talks to. `SdkServoBus` implements it on the vendor SDKs, which
share one API (PortHandler, PacketHandler, GroupSyncRead/GroupSyncWrite); `feetech.FeetechBus`
and `dynamixel.DynamixelBus` fill in the differences. `open_bus` imports only the backend that
is asked for, so a machine with one SDK runs the robots that need it.
"""

from __future__ import annotations

import importlib
from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from types import ModuleType
from typing import TypeVar

from vla_common.errors import ConfigError
from vla_common.errors import DeviceError
from vla_control.servo.models import BAUDRATE
from vla_control.servo.models import ServoModel

T = TypeVar('T')


class BusError(ConnectionError):
    """One transfer failed: no reply, a corrupt reply, a servo error or a port error."""


def with_retries(
    transfer: Callable[[], T],
    retries: int,
    failed: Callable[[BusError], None] = lambda exc: None,
) -> T:
    """`transfer()`, tried up to 1 + `retries` times; the last BusError if every one failed.

    `failed` sees each BusError, retried or not (the driver counts them).
    """
    while True:
        try:
            return transfer()
        except BusError as exc:
            failed(exc)
            if retries <= 0:
                raise
            retries -= 1


class ServoBus(ABC):
    """One serial bus of servos of one model, in raw ticks."""

    model: ServoModel
    port: str

    @abstractmethod
    def open(self) -> None:
        """Open the port; DeviceError if it cannot be opened."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def ping(self, servo_id: int) -> int:
        """The servo's model number; BusError if it does not answer."""

    @abstractmethod
    def read_positions(self, ids: Sequence[int]) -> dict[int, int]:
        """Present positions of `ids` in one sync read; BusError unless every servo answered."""

    @abstractmethod
    def write_goals(self, goals: Mapping[int, int]) -> None:
        """Goal positions in one sync write (no reply to check: servos answer nothing)."""

    @abstractmethod
    def set_torque(self, ids: Sequence[int], enabled: bool) -> None:
        """Torque on or off, servo by servo, each write acknowledged; BusError if one fails."""


class SdkServoBus(ServoBus):
    """A ServoBus on feetech-servo-sdk or dynamixel-sdk (same API, different constants)."""

    sdk_module: str  # import name of the SDK
    protocol: float  # PacketHandler's argument

    def __init__(self, port: str, baudrate: int = BAUDRATE):
        self.port = port
        self.baudrate = baudrate
        self.sdk: ModuleType = importlib.import_module(self.sdk_module)
        self._port = self.sdk.PortHandler(port)
        self._packets = self.sdk.PacketHandler(self.protocol)
        self._reader = None
        self._reader_ids: tuple[int, ...] = ()
        self._writer = self.sdk.GroupSyncWrite(
            self._port, self._packets, self.model.goal_address, self.model.position_bytes
        )

    def open(self) -> None:
        try:
            opened = self._port.openPort() and self._port.setBaudRate(self.baudrate)
        except OSError as exc:  # pyserial's SerialException: no such device, no permission
            raise DeviceError(f'cannot open servo bus {self.port}: {exc}') from None
        if not opened:
            raise DeviceError(f'cannot open servo bus {self.port} at {self.baudrate} baud')

    def close(self) -> None:
        if self._port.is_open:
            self._port.closePort()

    def ping(self, servo_id: int) -> int:
        model_number, result, error = self._transfer(
            lambda: self._packets.ping(self._port, servo_id)
        )
        self._check(result, error, f'ping of servo {servo_id}')
        return model_number

    def read_positions(self, ids: Sequence[int]) -> dict[int, int]:
        ids = tuple(ids)
        if ids != self._reader_ids:
            self._reader = self.sdk.GroupSyncRead(
                self._port, self._packets, self.model.present_address, self.model.position_bytes
            )
            for servo_id in ids:
                self._reader.addParam(servo_id)
            self._reader_ids = ids
        result = self._transfer(self._reader.txRxPacket)
        # On failure the SDK keeps the previous cycle's data for some ids: use none of it.
        self._check(result, 0, f'sync read of present position from {list(ids)}')
        size, address = self.model.position_bytes, self.model.present_address
        positions = {}
        for servo_id in ids:
            if not self._reader.isAvailable(servo_id, address, size):
                raise BusError(f'sync read: no present position from servo {servo_id}')
            raw = self._reader.getData(servo_id, address, size)
            positions[servo_id] = self.model.decode_position(raw.to_bytes(size, 'little'))
        return positions

    def write_goals(self, goals: Mapping[int, int]) -> None:
        self._writer.clearParam()
        for servo_id, ticks in goals.items():
            self._writer.addParam(servo_id, list(self.model.encode_position(ticks)))
        result = self._transfer(self._writer.txPacket)
        self._check(result, 0, f'sync write of goal position to {list(goals)}')

    def set_torque(self, ids: Sequence[int], enabled: bool) -> None:
        for servo_id in ids:
            result, error = self._transfer(
                lambda i=servo_id: self._packets.write1ByteTxRx(
                    self._port, i, self.model.torque_address, int(enabled)
                )
            )
            self._check(result, error, f'torque {"on" if enabled else "off"} of servo {servo_id}')

    def _transfer(self, call):
        # The SDK leaves its busy flag set when a transfer raised; this bus is its only user.
        self._port.is_using = False
        try:
            return call()
        except OSError as exc:  # the adapter was unplugged mid-transfer
            raise BusError(f'{self.port}: {exc}') from None

    def _check(self, result: int, error: int, what: str) -> None:
        if result != self.sdk.COMM_SUCCESS:
            raise BusError(f'{what} failed: {self._packets.getTxRxResult(result)}')
        if error:
            raise BusError(f'{what}: servo error {self._packets.getRxPacketError(error)}')


BACKENDS = {
    'feetech': 'vla_control.servo.feetech:FeetechBus',
    'dynamixel': 'vla_control.servo.dynamixel:DynamixelBus',
}


def open_bus(bus: str, port: str, baudrate: int = BAUDRATE) -> ServoBus:
    """The backend for `bus` (feetech or dynamixel), opened on `port`."""
    if bus not in BACKENDS:
        raise ConfigError(f'unknown servo bus {bus!r}; known: {", ".join(BACKENDS)}')
    module, name = BACKENDS[bus].split(':')
    try:
        backend = getattr(importlib.import_module(module), name)(port, baudrate)
    except ImportError as exc:
        raise ConfigError(f'the {bus} servo SDK is not installed: {exc}') from None
    backend.open()
    return backend
