"""The real servo SDKs (feetech-servo-sdk, dynamixel-sdk) against the emulated bus, and the
backends built on them."""

import time

import pytest

from vla_control.servo.bus import BusError
from vla_control.servo.bus import open_bus
from vla_control.servo.emulator import ServoBusEmulator
from vla_control.servo.emulator import crc16
from vla_control.servo.models import STS3215
from vla_control.servo.models import XL430_W250
from vla_control.servo.models import XM430_W350

scs = pytest.importorskip('scservo_sdk')
dxl = pytest.importorskip('dynamixel_sdk')

SO101_IDS = [1, 2, 3, 4, 5, 6]
ALOHA_IDS = [1, 2, 4, 6, 7, 8, 9]  # one ViperX arm: shadows 3 and 5 answer nothing
ALOHA_SERVOS = {i: XL430_W250 if i in (7, 8, 9) else XM430_W350 for i in ALOHA_IDS}


def test_crc16_is_the_protocol_2_crc():
    # The instruction packet of the ROBOTIS e-Manual's ping example: CRC bytes 19 4E.
    assert crc16(bytes.fromhex('FFFFFD0001030001')) == 0x4E19


@pytest.mark.parametrize('model', [STS3215, XM430_W350])
def test_positions_encode_as_the_registers_do(model):
    for ticks in (0, 1, 2048, 4095, -1, -4095):
        assert model.decode_position(model.encode_position(ticks)) == ticks
    assert STS3215.encode_position(-5) == bytes([5, 0x80])  # sign-magnitude, bit 15
    assert XM430_W350.encode_position(-5) == (-5).to_bytes(4, 'little', signed=True)


@pytest.fixture
def feetech():
    with ServoBusEmulator(dict.fromkeys(SO101_IDS, STS3215)) as emulator:
        port = scs.PortHandler(emulator.port)
        assert port.openPort()
        assert port.setBaudRate(1_000_000)
        yield emulator, port, scs.PacketHandler(0)
        port.closePort()


@pytest.fixture
def dynamixel():
    with ServoBusEmulator(ALOHA_SERVOS) as emulator:
        port = dxl.PortHandler(emulator.port)
        assert port.openPort()
        assert port.setBaudRate(1_000_000)
        yield emulator, port, dxl.PacketHandler(2.0)
        port.closePort()


def test_feetech_sdk_ping_read_write(feetech):
    emulator, port, packets = feetech
    assert packets.ping(port, 3) == (777, scs.COMM_SUCCESS, 0)
    assert packets.ping(port, 7)[1] == scs.COMM_RX_TIMEOUT  # nobody there
    emulator.set_position(2, 1234)
    assert packets.read2ByteTxRx(port, 2, STS3215.present_address) == (1234, scs.COMM_SUCCESS, 0)
    assert packets.write2ByteTxRx(port, 2, STS3215.goal_address, 1500) == (scs.COMM_SUCCESS, 0)
    assert emulator.goal(2) == 1500
    assert packets.write1ByteTxRx(port, 2, STS3215.torque_address, 1) == (scs.COMM_SUCCESS, 0)
    assert emulator.torque(2)


def test_feetech_sdk_sync_read_and_write_six_servos(feetech):
    emulator, port, packets = feetech
    for i in SO101_IDS:
        emulator.set_position(i, 1000 + 100 * i)
    reader = scs.GroupSyncRead(port, packets, STS3215.present_address, 2)
    for i in SO101_IDS:
        assert reader.addParam(i)
    assert reader.txRxPacket() == scs.COMM_SUCCESS
    assert [reader.getData(i, STS3215.present_address, 2) for i in SO101_IDS] == [
        1000 + 100 * i for i in SO101_IDS
    ]
    writer = scs.GroupSyncWrite(port, packets, STS3215.goal_address, 2)
    for i in SO101_IDS:
        assert writer.addParam(i, list((3000 - i).to_bytes(2, 'little')))
    assert writer.txPacket() == scs.COMM_SUCCESS
    # A sync write has no reply: a read afterwards proves it was handled.
    assert reader.txRxPacket() == scs.COMM_SUCCESS
    assert [emulator.goal(i) for i in SO101_IDS] == [3000 - i for i in SO101_IDS]


def test_dynamixel_sdk_ping_read_write_with_byte_stuffing(dynamixel):
    emulator, port, packets = dynamixel
    assert packets.ping(port, 1) == (1020, dxl.COMM_SUCCESS, 0)
    assert packets.ping(port, 9) == (1060, dxl.COMM_SUCCESS, 0)
    assert packets.ping(port, 3)[1] == dxl.COMM_RX_TIMEOUT  # a shadow servo: silent
    # 0x00FDFFFF: bytes FF FF FD 00, a header inside the data, stuffed both ways.
    emulator.set_position(4, 0xFDFFFF)
    assert packets.read4ByteTxRx(port, 4, XM430_W350.present_address) == (
        0xFDFFFF,
        dxl.COMM_SUCCESS,
        0,
    )
    assert packets.write4ByteTxRx(port, 6, XM430_W350.goal_address, 0xFDFFFF)[0] == 0
    assert emulator.goal(6) == 0xFDFFFF
    assert packets.write1ByteTxRx(port, 6, XM430_W350.torque_address, 1) == (0, 0)
    assert emulator.torque(6)


def test_dynamixel_sdk_sync_read_and_write_aloha_ids(dynamixel):
    emulator, port, packets = dynamixel
    for i in ALOHA_IDS:
        emulator.set_position(i, 1000 + 100 * i)
    reader = dxl.GroupSyncRead(port, packets, XM430_W350.present_address, 4)
    for i in ALOHA_IDS:
        assert reader.addParam(i)
    assert reader.txRxPacket() == dxl.COMM_SUCCESS
    assert [reader.getData(i, XM430_W350.present_address, 4) for i in ALOHA_IDS] == [
        1000 + 100 * i for i in ALOHA_IDS
    ]
    writer = dxl.GroupSyncWrite(port, packets, XM430_W350.goal_address, 4)
    for i in ALOHA_IDS:
        assert writer.addParam(i, list((3000 - i).to_bytes(4, 'little')))
    assert writer.txPacket() == dxl.COMM_SUCCESS
    assert reader.txRxPacket() == dxl.COMM_SUCCESS
    assert [emulator.goal(i) for i in ALOHA_IDS] == [3000 - i for i in ALOHA_IDS]


@pytest.mark.parametrize(
    ('bus', 'servos'),
    [('feetech', dict.fromkeys(SO101_IDS, STS3215)), ('dynamixel', ALOHA_SERVOS)],
)
def test_backend_moves_servos_and_reports_each_fault(bus, servos):
    with ServoBusEmulator(servos) as emulator:
        backend = open_bus(bus, emulator.port)
        ids = list(servos)
        assert backend.read_positions(ids) == dict.fromkeys(ids, 2048)
        backend.write_goals({i: 2048 + 10 * i for i in ids})
        backend.set_torque(ids, True)  # acknowledged servo by servo
        assert all(emulator.torque(i) for i in ids)
        deadline = time.monotonic() + 5
        while backend.read_positions(ids) != {i: 2048 + 10 * i for i in ids}:
            assert time.monotonic() < deadline, 'the servos did not reach their goals'
        for fault, reason in (('drop', 'no status packet'), ('corrupt', 'Incorrect status')):
            emulator.inject(fault)
            with pytest.raises(BusError, match=reason):
                backend.read_positions(ids)
        assert backend.read_positions(ids) == {i: 2048 + 10 * i for i in ids}
        # A reply that comes after the read gave up must not be taken for a later one.
        backend.set_torque(ids, False)
        emulator.faults.delay_s = 0.06
        emulator.inject('delay')
        with pytest.raises(BusError):
            backend.read_positions(ids)
        for i in ids:
            emulator.set_position(i, 1000 + i)
        time.sleep(0.1)  # the late reply arrives
        assert backend.read_positions(ids) == {i: 1000 + i for i in ids}
        backend.close()
