"""System calls per proxied request, counted by `strace -c -f`, for the governed gateway (B) and nginx (C), driven by
bench/syscalls. Each target runs natively in front of vllm-sim; after a warm-up strace attaches, wrk sends a fixed
number of JSON chat requests (stopped by count, as bench/callgrind does), and the counts are divided by the requests
vllm-sim saw. strace slows the traced process, so read counts, not times.
"""
import datetime
import os
import re
import signal
import subprocess
import time

import callgrind
import run as bench

ROOT = bench.ROOT


def count(label, argv, port, key, sim_port, upstream_key, requests, connections, env=None):
    """Per-request counts of each system call while `requests` requests pass through the target."""
    process = bench.start(label, argv, env=env)
    bench.wait_port(port)
    callgrind.drive(port, key, max(50, requests // 10), False, sim_port, upstream_key, connections)
    output = os.path.join(bench.WORK, f"{label}-c{connections}.strace")
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", output, "-p", str(process.pid)], stderr=subprocess.DEVNULL)
    time.sleep(1)  # strace attaches to every thread before the window opens
    seen = callgrind.sim_requests(sim_port, upstream_key)
    callgrind.drive(port, key, requests, False, sim_port, upstream_key, connections)
    served = callgrind.sim_requests(sim_port, upstream_key) - seen
    tracer.send_signal(signal.SIGINT)
    tracer.wait(timeout=60)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    calls = {}
    with open(output) as handle:
        for line in handle:
            # "% time seconds usecs/call calls [errors] syscall": the name is last, the count the fourth column.
            fields = line.split()
            if len(fields) >= 5 and re.fullmatch(r"[\d.]+", fields[0]) and fields[-1] != "total":
                calls[fields[-1]] = int(fields[3]) / served
    print(f"{label} c={connections}: {served} requests, {sum(calls.values()):.2f} system calls per request", flush=True)
    return {"requests": served, "per_request": calls}


def main():
    parser = bench.binaries_parser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    sim_port, upstream_key, store, key = callgrind.start_upstream(args.warden, args.sim)
    results = {}
    for connections in (1, 8):
        port, admin = bench.free_port(), bench.free_port()
        config = bench.write_config(f"B-c{connections}", sim_port, store, True, port, admin)
        results[f"B c={connections}"] = count("B", [args.warden, "gateway", "--config", config], port, key, sim_port, upstream_key,
                                              args.requests, connections, dict(os.environ, VLLM_API_KEY=upstream_key))
        nginx_port = bench.free_port()
        nginx_conf = bench.write_nginx(nginx_port, sim_port, key, upstream_key)
        results[f"C c={connections}"] = count("C", ["nginx", "-p", os.path.join(bench.WORK, "nginx"), "-c", nginx_conf, "-g", "daemon off; master_process off;"],
                                              nginx_port, key, sim_port, upstream_key, args.requests, connections)
    report(results, args)


def report(results, args):
    day = datetime.datetime.now(datetime.timezone.utc)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    names = sorted({name for entry in results.values() for name in entry["per_request"]},
                   key=lambda name: -max(entry["per_request"].get(name, 0) for entry in results.values()))
    names = [name for name in names if max(entry["per_request"].get(name, 0) for entry in results.values()) >= 0.01]
    lines = [f"# System calls per request under strace — {day:%Y-%m-%d %H:%M} UTC", "",
             f"Command: `bench/syscalls --requests {args.requests}` at commit {commit}. wrk -t1 with 1 and 8 connections, JSON chat "
             "(max_tokens 16), vllm-sim upstream; `strace -c -f` on the server process; counts divided by the requests vllm-sim saw "
             "(calls below 0.01 per request left out).", "",
             "| system call | " + " | ".join(results) + " |", "|---|" + "---:|" * len(results)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{entry['per_request'].get(name, 0):.2f}" for entry in results.values()) + " |")
    lines.append("| **total** | " + " | ".join(f"**{sum(entry['per_request'].values()):.2f}**" for entry in results.values()) + " |")
    with open(os.path.join(ROOT, "bench/results", f"syscalls-{day:%Y-%m-%d}.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
