"""The node graph of the stack.

Shared by robot.launch.py and the `vla` runner; the package installs the top-level launch/ and
config/.
"""
