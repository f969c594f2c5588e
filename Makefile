# The README's commands. Every target runs scripts/setup.sh first (fast when nothing changed).
.PHONY: setup run teleop test bench clean

setup:
	@bash scripts/setup.sh

# The main job: the shipped VLA policy (models/so101_cubes) drives the simulated SO-101 through
# the ROS graph (simulator, controller and policy node, each its own process) on seeded scenes
# it was not trained on, then prints the success and latency summary. Headless; VIDEO=N writes
# the first N episodes to outputs/demo/eval.mp4.
EPISODES ?= 3
VIDEO ?= 0
run: setup
	@. ./env.sh && vla eval robot:=so101 checkpoint:=models/so101_cubes episodes:=$(EPISODES) \
		video_episodes:=$(VIDEO) output:=outputs/demo

# The scripted expert picks the asked cube through the teleop node, as when recording; Ctrl-C stops.
teleop: setup
	@. ./env.sh && vla bringup robot:=so101 mode:=teleop sim:=true

test:
	@bash scripts/test.sh

bench: setup
	@. ./env.sh && python bench/camera_throughput.py

clean:
	rm -rf .venv build install log .setup-stamps env.sh
