"""Leader-follower teleoperation, the episode recorder and dataset writers (no code yet)."""
