# The two commands of the README, plus the set-up they both run first.
VENV ?= .venv
PY := $(VENV)/bin/python
PROMPT ?= an oil painting of a corgi
PYTEST_ARGS ?=

.PHONY: setup demo test

setup:
	@bash tools/setup_env.sh

# The main job: generate images for a prompt and write a PNG grid. No GLIDE
# weights can be downloaded here and no trained demo model ships yet, so this
# samples the tiny cascade config with random weights (noise-like images);
# pass CONFIG=... CHECKPOINT=... for real weights.
CONFIG ?= projects/glide/configs/glide_tiny_16-32.py
CHECKPOINT ?=
demo: setup
	$(PY) tools/glide_sample.py "$(PROMPT)" --batch-size 4 --seed 0 \
	    --config $(CONFIG) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) \
	    --out outputs/demo.png

# The test suite (pytest's exit code 5, "no tests collected", is not a failure).
test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS) || [ $$? -eq 5 ]
