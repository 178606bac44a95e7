#!/bin/sh
# The fake venv's bin/vllm: `vllm serve MODEL [flags]` execs vllm-sim with the flags that matter to the test
# (host, port, served name, shutdown timeout), the way the real entry point becomes the unit's main process.
# vllm-sim reads VLLM_API_KEY from the environment, as vLLM does. Other flags (and their values) are ignored.
set -eu
[ "${1:-}" = serve ] && [ $# -ge 2 ] || { echo "fake vllm: usage: vllm serve MODEL [flags]" >&2; exit 2; }
model=$2
shift 2
host=127.0.0.1 port=8000 name=${model##*/} timeout=0
while [ $# -gt 0 ]; do
    case $1 in
        --host) host=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --served-model-name) name=$2; shift 2 ;;
        --shutdown-timeout) timeout=$2; shift 2 ;;
        --host=*) host=${1#*=}; shift ;;
        --port=*) port=${1#*=}; shift ;;
        --served-model-name=*) name=${1#*=}; shift ;;
        --shutdown-timeout=*) timeout=${1#*=}; shift ;;
        --*) if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then shift 2; else shift; fi ;;
        *) shift ;;
    esac
done
echo "fake vllm: serving $model as $name on $host:$port (shutdown timeout $timeout s) with vllm-sim ${VLLM_SIM_ARGS:-}"
# VLLM_SIM_ARGS (set by the test's drop-in) adds vllm-sim flags such as its token pacing; split on spaces.
# shellcheck disable=SC2086
exec "${VLLM_SIM:-/usr/bin/vllm-sim}" --host "$host" --port "$port" --served-model-name "$name" --shutdown-timeout "$timeout" ${VLLM_SIM_ARGS:-}
