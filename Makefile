# The two commands of the README, plus the set-up they both run first.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup browser demo web test

setup:
	@bash tools/setup_env.sh

# Chromium and chromedriver (Debian packages) for the web demo's browser test.
browser:
	@bash tools/setup_browser.sh

# The main job: the shipped demo cascade (a small GLIDE trained here on the
# procedural shapes dataset, checkpoints/glide_shapes-32.safetensors: a
# 32 px base model and its 32->64 upsampler) draws 4 samples for each prompt
# into one PNG grid of 64 px images, enlarged 2x. Any prompt works
# (GLIDE's tokenizer), but the model only knows the words of the shapes
# captions (it warns about others). PROMPTS is one prompt, or several
# separated by ';' (PROMPTS with double quotes is read the older way, as
# shell-quoted prompts: PROMPTS='"one" "two"'):
#   make demo PROMPTS='a small green triangle at the top left on a gray background'
# CONFIG=... CHECKPOINT=... samples another model.
PROMPTS ?= a large red circle in the top left corner, black background; \
	a small blue triangle in the bottom right corner, white background; \
	a large yellow triangle in the top right corner, gray background; \
	a large green square in the bottom left corner, black background
CONFIG ?= projects/glide/configs/glide_upsampler_2xb16-1k_shapes-32-64.py
CHECKPOINT ?= checkpoints/glide_shapes-32.safetensors
PROMPT_ARGS = $(if $(findstring ",$(PROMPTS)),$(PROMPTS),\
	'$(subst ','\'',$(PROMPTS))' --separator ';')
demo: setup
	$(PY) tools/glide_sample.py $(PROMPT_ARGS) --batch-size 4 --seed 0 --zoom 2 \
	    --config $(CONFIG) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) \
	    --out outputs/demo.png

# The web page (tools/web_demo.py): prompt to images in the browser, served
# on http://127.0.0.1:7860 (this machine only; WEB_ARGS='--port 7861' etc.).
WEB_ARGS ?=
web: setup
	$(PY) tools/web_demo.py $(CONFIG) $(CHECKPOINT) $(WEB_ARGS)

# The test suite (pytest's exit code 5, "no tests collected", is not a failure).
test: setup browser
	$(PY) -m pytest tests $(PYTEST_ARGS) || [ $$? -eq 5 ]
