# Shared helpers for the bench scripts: free ports, process-tree CPU and RSS, cleanup.
set -euo pipefail

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Sum of utime+stime (clock ticks) over a process and all its descendants.
tree_ticks() {
    local total=0 pid
    for pid in $(tree_pids "$1"); do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")))
    done
    echo "$total"
}

tree_pids() {
    local pid=$1 child
    echo "$pid"
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do tree_pids "$child"; done
}

# Resident set size of a process tree in KiB.
tree_rss_kib() {
    local total=0 pid
    for pid in $(tree_pids "$1"); do
        [ -r "/proc/$pid/status" ] || continue
        total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
    done
    echo "$total"
}

wait_for_port() {
    local port=$1 tries=200
    until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do
        tries=$((tries - 1)); [ $tries -gt 0 ] || { echo "nothing listens on port $port" >&2; return 1; }
        sleep 0.05
    done
}

ensure_tools() {
    local missing=()
    for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
    if [ ${#missing[@]} -gt 0 ]; then
        local packages=()
        for tool in "${missing[@]}"; do case $tool in nginx) packages+=(nginx-light);; *) packages+=("$tool");; esac; done
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
    fi
}
