"""MuJoCo robots and scenes exposing the same topics as real arms (no code yet)."""
