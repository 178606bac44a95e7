#!/usr/bin/env bash
# The deployment guide's preflight, kept verbatim in spirit for comparison on GPU hosts (3.5–4.1 s per start on an
# H100, almost all of it importing torch). Run: hyperfine 'bash bench/guide-preflight.sh'
set -euo pipefail
VENV=${VENV:-/opt/vllm/.venv}
MODEL_DIR=${MODEL_DIR:-/opt/models/model}
PORT=${PORT:-8000}
nvidia-smi > /dev/null
"$VENV/bin/python" -c "import torch; assert torch.cuda.is_available()"
if ss -ltn | grep -q ":$PORT "; then echo "port $PORT in use" >&2; exit 1; fi
test -f "$MODEL_DIR/config.json"
