"""An emulated servo bus on a pseudo-terminal, for testing the real servo SDKs without hardware.

`ServoBusEmulator` opens a pty; the driver under test opens `emulator.port` (the slave path)
with pyserial, as it would a USB serial adapter, and the emulator answers on the master side
in the servos' wire formats: Feetech SCS (STS3215: FF FF id len inst params checksum) or
Dynamixel protocol 2.0 (FF FF FD 00 id len16 inst params CRC16, with byte stuffing). It
answers ping, read, write, sync read and sync write from a per-servo control table
(`models.ServoModel` addresses). With torque on, a servo's present position moves toward its
goal at `speed` ticks/s; with torque off it stays where the test puts it (`set_position`, as a
hand moving a leader arm). Faults: `faults` (probabilities per instruction that expects a
reply) and `inject` (one-shot) drop a reply, corrupt its checksum or delay the replies.

A pty has no baud rate (the SDKs' `setBaudRate` succeeds and changes nothing) and delivers
bytes at once; the SDKs' packet timeouts still apply (~34 ms at 1 Mbps: twice their 16 ms
USB latency allowance), so a dropped reply costs what it costs on a real bus.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
import tty
from collections.abc import Mapping
from dataclasses import dataclass

from vla_control.servo.models import ServoModel

PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83
BROADCAST_ID = 0xFE
DYNAMIXEL_STATUS = 0x55
DYNAMIXEL_FIRMWARE = 46
# Error codes of a status packet for an instruction the emulator does not implement.
FEETECH_INSTRUCTION_ERROR = 0x40
DYNAMIXEL_INSTRUCTION_ERROR = 0x02
TABLE_SIZE = 256


@dataclass
class Faults:
    """Per instruction that expects a reply: the probability of each fault."""

    drop: float = 0.0  # one of its replies is never sent (for a sync read: one servo's)
    corrupt: float = 0.0  # one of its replies has a wrong checksum / CRC
    delay: float = 0.0  # its replies come `delay_s` late
    delay_s: float = 0.05


@dataclass
class Stats:
    instructions: int = 0
    dropped: int = 0
    corrupted: int = 0
    delayed: int = 0


class EmulatedServo:
    def __init__(self, servo_id: int, model: ServoModel, ticks: int):
        self.id = servo_id
        self.model = model
        self.table = bytearray(TABLE_SIZE)
        self.table[model.model_address : model.model_address + 2] = model.model_number.to_bytes(
            2, 'little'
        )
        self.position = float(ticks)  # sub-tick motion accumulates here
        self.goal = ticks
        self.sync_present()

    @property
    def torque(self) -> bool:
        return bool(self.table[self.model.torque_address])

    @property
    def goal(self) -> int:
        start = self.model.goal_address
        return self.model.decode_position(self.table[start : start + self.model.position_bytes])

    @goal.setter
    def goal(self, ticks: int) -> None:
        start = self.model.goal_address
        self.table[start : start + self.model.position_bytes] = self.model.encode_position(ticks)

    def sync_present(self) -> None:
        start = self.model.present_address
        encoded = self.model.encode_position(round(self.position))
        self.table[start : start + self.model.position_bytes] = encoded

    def advance(self, seconds: float, speed: float) -> None:
        if self.torque:
            error = self.goal - self.position
            self.position += max(-speed * seconds, min(speed * seconds, error))
            self.sync_present()


class ServoBusEmulator:
    """Servos of one protocol on a pty; use as a context manager or start()/stop()."""

    def __init__(
        self,
        servos: Mapping[int, ServoModel],
        start_ticks: int = 2048,
        speed: float = 3000.0,
        seed: int = 0,
    ):
        protocols = {model.protocol for model in servos.values()}
        if len(protocols) != 1:
            raise ValueError(f'one protocol per bus, got {sorted(protocols)}')
        self.protocol = protocols.pop()
        self.speed = speed
        self.faults = Faults()
        self.stats = Stats()
        self._servos = {i: EmulatedServo(i, m, start_ticks) for i, m in servos.items()}
        self._one_shot: list[str] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._pending: list[tuple[float, bytes]] = []  # delayed replies: (due, bytes)
        self._buffer = bytearray()
        self._last_advance = time.monotonic()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or newline translation before pyserial opens it
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name='servo-emulator', daemon=True)

    # --- the test's side -----------------------------------------------------------------

    def start(self) -> ServoBusEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b'x')
        self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)

    def __enter__(self) -> ServoBusEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_position(self, servo_id: int, ticks: int) -> None:
        """Move a servo's horn by hand (with torque on, the servo then drives back to goal)."""
        with self._lock:
            self._advance()
            servo = self._servos[servo_id]
            servo.position = float(ticks)
            servo.sync_present()

    def position(self, servo_id: int) -> int:
        with self._lock:
            self._advance()
            return round(self._servos[servo_id].position)

    def goal(self, servo_id: int) -> int:
        with self._lock:
            return self._servos[servo_id].goal

    def torque(self, servo_id: int) -> bool:
        with self._lock:
            return self._servos[servo_id].torque

    def inject(self, kind: str, count: int = 1) -> None:
        """The next `count` instructions that expect a reply get fault `kind`."""
        if kind not in ('drop', 'corrupt', 'delay'):
            raise ValueError(f'fault must be drop, corrupt or delay, got {kind!r}')
        with self._lock:
            self._one_shot += [kind] * count

    # --- the bus side ----------------------------------------------------------------------

    def _advance(self) -> None:
        now = time.monotonic()
        for servo in self._servos.values():
            servo.advance(now - self._last_advance, self.speed)
        self._last_advance = now

    def _serve(self) -> None:
        while not self._stop.is_set():
            timeout = 0.01
            if self._pending:
                timeout = max(0.0, min(timeout, self._pending[0][0] - time.monotonic()))
            ready, _, _ = select.select([self._master, self._wake_r], [], [], timeout)
            if self._master in ready:
                try:
                    self._buffer += os.read(self._master, 4096)
                except OSError:  # EIO while no one has the port open
                    pass
                while (packet := self._next_packet()) is not None:
                    self._handle(*packet)
            now = time.monotonic()
            while self._pending and self._pending[0][0] <= now:
                self._send(self._pending.pop(0)[1])

    def _send(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except OSError:  # buffer full or no reader: lost, as on a wire
            pass

    def _next_packet(self) -> tuple[int, int, bytes] | None:
        """(id, instruction, parameters) of the next valid packet in the buffer, if complete."""
        parse = _parse_feetech if self.protocol == 'feetech' else _parse_dynamixel
        while True:
            result = parse(self._buffer)
            if result is None:
                return None
            consumed, packet = result
            del self._buffer[:consumed]
            if packet is not None:  # None: a garbled packet was skipped
                return packet

    def _handle(self, servo_id: int, instruction: int, params: bytes) -> None:
        with self._lock:
            self.stats.instructions += 1
            self._advance()
            replies = self._execute(servo_id, instruction, params)
            if not replies:
                return
            fault = self._one_shot.pop(0) if self._one_shot else self._random_fault()
            replies = [self._status(i, error, data) for i, error, data in replies]
            if fault == 'drop':
                del replies[self._random.randrange(len(replies))]
                self.stats.dropped += 1
            elif fault == 'corrupt':
                k = self._random.randrange(len(replies))
                replies[k] = replies[k][:-1] + bytes([replies[k][-1] ^ 0xFF])
                self.stats.corrupted += 1
            data = b''.join(replies)
            if fault == 'delay':
                self.stats.delayed += 1
                self._pending.append((time.monotonic() + self.faults.delay_s, data))
                self._pending.sort(key=lambda item: item[0])
                return
        self._send(data)

    def _random_fault(self) -> str | None:
        draw = self._random.random()
        for kind in ('drop', 'corrupt', 'delay'):
            probability = getattr(self.faults, kind)
            if draw < probability:
                return kind
            draw -= probability
        return None

    def _execute(self, servo_id: int, instruction: int, params: bytes):
        """Apply one instruction; return the replies as (id, error, data) triples."""
        wide = self.protocol == 'dynamixel'  # 2-byte addresses and lengths
        field = 2 if wide else 1

        def number(offset: int) -> int:
            return int.from_bytes(params[offset : offset + field], 'little')

        if instruction in (SYNC_READ, SYNC_WRITE):
            address, length = number(0), number(field)
            body = params[2 * field :]
            if instruction == SYNC_READ:
                return [(i, 0, self._read(i, address, length)) for i in body if i in self._servos]
            for k in range(0, len(body) - length, length + 1):
                if body[k] in self._servos:
                    self._write(body[k], address, body[k + 1 : k + 1 + length])
            return []
        if servo_id not in self._servos:
            return []  # broadcast or nobody with this id: silence
        if instruction == PING:
            model = self._servos[servo_id].model
            data = model.model_number.to_bytes(2, 'little') + bytes([DYNAMIXEL_FIRMWARE])
            return [(servo_id, 0, data if wide else b'')]
        if instruction == READ:
            return [(servo_id, 0, self._read(servo_id, number(0), number(field)))]
        if instruction == WRITE:
            self._write(servo_id, number(0), params[field:])
            return [(servo_id, 0, b'')]
        error = DYNAMIXEL_INSTRUCTION_ERROR if wide else FEETECH_INSTRUCTION_ERROR
        return [(servo_id, error, b'')]

    def _read(self, servo_id: int, address: int, length: int) -> bytes:
        return bytes(self._servos[servo_id].table[address : address + length])

    def _write(self, servo_id: int, address: int, data: bytes) -> None:
        self._servos[servo_id].table[address : address + len(data)] = data

    def _status(self, servo_id: int, error: int, data: bytes) -> bytes:
        if self.protocol == 'feetech':
            body = bytes([servo_id, len(data) + 2, error, *data])
            return b'\xff\xff' + body + bytes([~sum(body) & 0xFF])
        payload = _stuff(bytes([DYNAMIXEL_STATUS, error, *data]))
        packet = b'\xff\xff\xfd\x00' + bytes([servo_id]) + (len(payload) + 2).to_bytes(2, 'little')
        packet += payload
        return packet + crc16(packet).to_bytes(2, 'little')


# --- wire formats --------------------------------------------------------------------------


def _parse_feetech(buffer: bytearray):
    """(bytes consumed, (id, instruction, params) or None if garbled), or None if incomplete."""
    start = buffer.find(b'\xff\xff')
    if start < 0:
        return (max(0, len(buffer) - 1), None) if len(buffer) > 1 else None
    if len(buffer) < start + 4:
        return None
    total = buffer[start + 3] + 4
    if len(buffer) < start + total:
        return None
    packet = bytes(buffer[start : start + total])
    if packet[-1] != ~sum(packet[2:-1]) & 0xFF or total < 6:
        return start + 2, None
    return start + total, (packet[2], packet[4], packet[5:-1])


def _parse_dynamixel(buffer: bytearray):
    start = buffer.find(b'\xff\xff\xfd\x00')
    if start < 0:
        return (max(0, len(buffer) - 3), None) if len(buffer) > 3 else None
    if len(buffer) < start + 7:
        return None
    total = int.from_bytes(buffer[start + 5 : start + 7], 'little') + 7
    if len(buffer) < start + total:
        return None
    packet = bytes(buffer[start : start + total])
    if total < 10 or crc16(packet[:-2]) != int.from_bytes(packet[-2:], 'little'):
        return start + 4, None
    payload = _unstuff(packet[7:-2])
    return start + total, (packet[4], payload[0], payload[1:])


def _stuff(payload: bytes) -> bytes:
    """Protocol 2.0 byte stuffing: FF FF FD inside a packet becomes FF FF FD FD."""
    out = bytearray()
    for byte in payload:
        out.append(byte)
        if out[-3:] == b'\xff\xff\xfd':
            out.append(0xFD)
    return bytes(out)


def _unstuff(payload: bytes) -> bytes:
    out = bytearray()
    for byte in payload:
        if byte == 0xFD and out[-3:] == b'\xff\xff\xfd':
            continue
        out.append(byte)
    return bytes(out)


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16 of protocol 2.0 (polynomial 0x8005, initial 0, not reflected: CRC-16/BUYPASS)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc
