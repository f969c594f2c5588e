"""The VLA model, inference engine, checkpoints, training and the policy node (no code yet)."""
