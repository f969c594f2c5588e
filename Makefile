# The README's commands. Every target runs scripts/setup.sh first (fast when nothing changed).
.PHONY: setup run test bench clean

setup:
	@bash scripts/setup.sh

# The main job: for now the simulated SO-101 picking the asked cube, driven by the scripted
# expert through the teleop node (the VLA policy takes the expert's place when it lands).
run: setup
	@. ./env.sh && vla bringup robot:=so101 mode:=teleop sim:=true

test:
	@bash scripts/test.sh

bench: setup
	@. ./env.sh && python bench/camera_throughput.py

clean:
	rm -rf .venv build install log .setup-stamps env.sh
