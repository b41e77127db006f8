# The two commands of the README, plus the set-up they both run first.
VENV ?= .venv
PY := $(VENV)/bin/python
PROMPT ?= a large red circle at the top left on a white background
PYTEST_ARGS ?=

.PHONY: setup demo test

setup:
	@bash tools/setup_env.sh

# The main job: generate images for a prompt with the GLIDE trained here on
# the procedural shapes dataset (shipped weights), and write a PNG grid.
demo: setup
	$(PY) tools/glide_sample.py "$(PROMPT)" --batch-size 8 --seed 0 \
	    --config projects/glide/configs/glide_shapes-32.py \
	    --checkpoint checkpoints/glide_shapes-32.safetensors \
	    --out outputs/demo.png

# The test suite (pytest's exit code 5, "no tests collected", is not a failure).
test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS) || [ $$? -eq 5 ]
