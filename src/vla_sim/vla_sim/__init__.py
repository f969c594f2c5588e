"""MuJoCo simulation for the vla_stack.

Robots and task scenes that expose the same topics as real arms.
"""
