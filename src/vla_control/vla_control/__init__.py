"""Action-chunk execution for the vla_stack (no code yet).

Interpolation, safety filter, PD, watchdog, the controller node and servo drivers.
"""
