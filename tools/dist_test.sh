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
source "$(dirname "$0")/dist_env.sh"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
