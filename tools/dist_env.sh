# Sourced by dist_train.sh and dist_test.sh: sets ROOT, PYTHON (the
# project's .venv/bin/python unless PYTHON is set) and the launcher's
# settings (NNODES, NODE_RANK, PORT, MASTER_ADDR), and stops with a clear
# message when that Python lacks torch, mmengine or mmagic.
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
