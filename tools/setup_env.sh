#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
#
# Idempotent: when .venv already matches the requirement files and this script,
# it returns in about a second. Works with no GPU: mmcv is built from source with
# its CPU ops (MMCV_WITH_OPS=1), and pip caches the built wheel for later runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${GLIDE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
STAMP="$VENV/.glide-setup-stamp"
WHISPER_VERSION=20250625   # ships whisper/assets/gpt2.tiktoken (GPT-2 BPE ranks)

want="$(cat "$CONSTRAINTS" requirements/runtime.txt "$0" setup.py | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi

echo "[setup] creating the environment in $VENV (first time: downloads ~5 GB, builds mmcv ~15 min)"
start=$(date +%s)
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -c "$CONSTRAINTS" "$@"; }

pip_install "setuptools<70" wheel ninja
pip_install torch torchvision
if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops" >/dev/null 2>&1; then
  echo "[setup] installing mmcv 2.1.0 with ops (built from source once, then taken from pip's cache)"
  MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    pip_install --no-build-isolation mmcv
fi
pip_install -r requirements/runtime.txt
# Only the GPT-2 ranks file is needed from whisper: no dependencies.
pip_install --no-deps "openai-whisper==$WHISPER_VERSION"
pip_install --no-deps --no-build-isolation -e .

"$VENV/bin/python" - <<'PY'
import mmcv.ops  # noqa: F401  (fails without the compiled ops)
from mmagic.apis import init_model  # noqa: F401
import numpy, torch
assert numpy.__version__.startswith('1.'), numpy.__version__
print(f'[setup] ok: torch {torch.__version__}, numpy {numpy.__version__}')
PY
echo "$want" > "$STAMP"
echo "[setup] done in $(( $(date +%s) - start )) s"
