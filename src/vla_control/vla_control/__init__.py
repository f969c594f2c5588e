"""Action-chunk execution for the vla_stack.

Chunk schedule and merges, interpolation, safety filter, PD, watchdog and the controller node.
"""
