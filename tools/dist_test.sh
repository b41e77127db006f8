#!/usr/bin/env bash
# Distributed testing with torch DDP via mmengine's launcher:
#   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py options]
# One process per GPU; without GPUs, CPU processes talk over gloo.
# Runs .venv/bin/python (PYTHON=... to choose another interpreter).
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py options]" >&2
  exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# The project's environment (make setup), not whatever `python` is on PATH;
# PYTHON=... picks another interpreter.
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then
    PYTHON="$ROOT/.venv/bin/python"
  else
    PYTHON=python3
  fi
fi
if ! "$PYTHON" -c 'import importlib.util as u, sys
sys.exit(not all(u.find_spec(m) for m in ("torch", "mmengine", "mmagic")))' \
    >/dev/null 2>&1; then
  echo "$(basename "$0"): $PYTHON lacks torch, mmengine or mmagic: create the" \
       "project's environment with \`make setup\` (.venv), or set PYTHON to an" \
       "interpreter that has them" >&2
  exit 1
fi
PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
