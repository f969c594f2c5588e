"""Teleoperation and recording for the vla_stack.

Leader-follower mapping and the teleop node; the episode recorder comes next.
"""
