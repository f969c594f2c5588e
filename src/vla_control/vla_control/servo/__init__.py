"""Servo drivers of the real arms, without ROS (the node is vla_control/driver_node.py).

models      control-table registers of the STS3215 and the X-series Dynamixels
bus         the ServoBus seam and its SDK implementation; feetech.py, dynamixel.py: backends
calibration per-arm calibration files, ticks <-> joint units
driver      one arm on one bus: retried reads, failure counts, fault state, checked writes
robot       the buses of a robot as one (the driver node's core and parameters)
calibrate   the calibration routine; cli.py: the `vla_calibrate` command
emulator    an emulated servo bus on a pty, for tests without hardware
"""
