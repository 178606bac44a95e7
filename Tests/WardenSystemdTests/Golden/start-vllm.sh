#!/bin/sh
# Rendered by `warden unit render` from the deployment file. The API key reaches vLLM through
# VLLM_API_KEY (EnvironmentFile=), never through this command line, where `ps` would show it.
set -eu
# Exit 3 (a failure to fix first) is in RestartPreventExitStatus=; exit 1 (may clear by itself) is retried.
/usr/local/bin/warden preflight --config /etc/warden/warden.yaml || exit $?
exec /opt/vllm/.venv/bin/vllm serve \
    /srv/models/Qwen2.5-7B-Instruct \
    --served-model-name Qwen2.5-7B-Instruct \
    --host 127.0.0.1 \
    --port 8000 \
    --gpu-memory-utilization 0.9 \
    --tensor-parallel-size 1 \
    --max-model-len 32768 \
    --shutdown-timeout 30 \
    --disable-fastapi-docs \
    --enable-prefix-caching
