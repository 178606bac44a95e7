"""Instructions per request under callgrind for the governed gateway (B) and nginx (C), driven by bench/callgrind.

Each target runs under `valgrind --tool=callgrind` in front of a native vllm-sim; after a warm-up the counters are
zeroed, wrk sends a fixed number of requests on 8 keep-alive connections (`--connections`), and the dump's total instruction count is
divided by the requests vllm-sim saw in that window (its /sim/stats, so the count is the server's, not wrk's).
A third count puts every request on new connections on both sides (the client sends `Connection: close`, a second
vllm-sim runs with --no-keep-alive): what a burst of new streams costs per stream — accept, connect and both closes.
A fourth paces the SSE events 5 ms apart (a third vllm-sim, --itl-ms 5), so each read carries one event, as in a
stream of real tokens: what relaying one event costs.
User-space instructions only: the kernel's share (a quarter of the gateway's CPU in bench/profile-gateway) is not
in these numbers.
"""
import datetime
import glob
import json
import os
import signal
import subprocess
import time
import urllib.request

import run as bench  # bench/run.py: process handling, configs for the gateway and nginx

ROOT = bench.ROOT


def sim_requests(port, key):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sim/stats", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        stats = json.load(response)
    return stats["requests"].get("POST /v1/chat/completions", 0)


def drive(port, key, count, stream, sim_port, upstream_key, connections=8, close=False):
    """Sends `count` requests (wrk's thread stops at that many responses) and returns once vllm-sim has seen them;
    wrk itself only ends at SIGINT or its duration."""
    env = dict(os.environ, BENCH_KEY=key, BENCH_STREAM="1" if stream else "0", BENCH_MAX_TOKENS="50" if stream else "16",
               BENCH_REQUESTS=str(count), BENCH_CLOSE="1" if close else "0")
    start = sim_requests(sim_port, upstream_key)
    process = subprocess.Popen(["wrk", "-t1", f"-c{connections}", "-d900s", "--timeout", "30s", "-s", os.path.join(ROOT, "bench/lib/chat.lua"),
                                f"http://127.0.0.1:{port}/v1/chat/completions"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 900
    while sim_requests(sim_port, upstream_key) - start < count:
        if process.poll() is not None or time.time() > deadline:
            raise SystemExit(f"wrk ended before {count} requests reached vllm-sim through port {port}")
        time.sleep(0.2)
    time.sleep(2)  # the responses still in flight when wrk's thread stopped finish on the server
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)


def callgrind_total(pid, prefix, reason):
    """Dumps the running process's counters and returns the instruction total of the dump and its path."""
    before = set(glob.glob(prefix + "*"))
    subprocess.run(["callgrind_control", "-d", reason, str(pid)], capture_output=True, text=True, timeout=120, check=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        fresh = sorted(set(glob.glob(prefix + "*")) - before, key=os.path.getmtime)
        for path in fresh:
            with open(path) as handle:
                for line in handle:
                    if line.startswith("summary:") or line.startswith("totals:"):
                        return int(line.split()[1]), path
        time.sleep(0.5)
    raise SystemExit(f"no callgrind dump at {prefix}* for {reason}")


KEEP_ALIVE = (("json", False, False), ("sse", True, False))
NEW_CONNECTIONS = (("json-new", False, True),)
PACED = (("sse-paced", True, False),)


def measure(label, argv, port, key, sim_port, upstream_key, args, env=None, scenarios=KEEP_ALIVE):
    directory = os.path.join(bench.WORK, "callgrind")
    os.makedirs(directory, exist_ok=True)
    process = bench.start(label, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={directory}/{label}.out.%p", *argv], env=env)
    bench.wait_port(port, timeout=300)
    results = {}
    for name, stream, close in scenarios:
        count = args.stream_requests if stream else args.requests
        drive(port, key, max(50, count // 10), stream, sim_port, upstream_key, args.connections, close)  # warm-up: pools, lazily built state
        time.sleep(1)
        subprocess.run(["callgrind_control", "-z", str(process.pid)], capture_output=True, timeout=120, check=True)
        seen = sim_requests(sim_port, upstream_key)
        drive(port, key, count, stream, sim_port, upstream_key, args.connections, close)
        instructions, dump = callgrind_total(process.pid, f"{directory}/{label}.out.{process.pid}", f"{label}-{name}")
        served = sim_requests(sim_port, upstream_key) - seen
        results[name] = {"requests": served, "instructions": instructions, "per_request": instructions / served, "dump": dump}
        print(f"{label} {name}: {served} requests, {instructions / served:,.0f} instructions per request", flush=True)
    return results


def start_sim(sim, upstream_key, label="sim", *flags):
    port = bench.free_port()
    bench.start(label, [sim, "--port", str(port), "--api-key", upstream_key, "--served-model-name", "sim-model", "--output-tokens", "50", *flags])
    bench.wait_port(port)
    return port


def start_upstream(warden, sim):
    """Starts vllm-sim (50 output tokens) and creates a gateway key; returns its port, its key, the key store and the key."""
    upstream_key = "bench-upstream-key"
    sim_port = start_sim(sim, upstream_key)
    store = os.path.join(bench.WORK, "keys/keys.sqlite")
    key = subprocess.run([warden, "keys", "create", "--name", "bench", "--config", bench.write_config("keys", sim_port, store, True)],
                         capture_output=True, text=True, check=True).stdout.strip()
    return sim_port, upstream_key, store, key


def start_proxies(warden, sim_port, upstream_key, store, key):
    """Starts the governed gateway (B) and nginx (C) in front of vllm-sim, natively; returns B's and C's processes and ports."""
    port, admin = bench.free_port(), bench.free_port()
    gateway = bench.start("B", [warden, "gateway", "--config", bench.write_config("B", sim_port, store, True, port, admin)],
                          env=dict(os.environ, VLLM_API_KEY=upstream_key), log=open(os.devnull, "w"))
    nginx_port = bench.free_port()
    nginx = bench.start("nginx", ["nginx", "-p", os.path.join(bench.WORK, "nginx"), "-c", bench.write_nginx(nginx_port, sim_port, key, upstream_key),
                                  "-g", "daemon off;"])
    bench.wait_port(port)
    bench.wait_port(nginx_port)
    return (gateway, port), (nginx, nginx_port)


def main():
    parser = bench.binaries_parser()
    parser.add_argument("--shim", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--stream-requests", type=int, default=400)
    parser.add_argument("--connections", type=int, default=8, help="wrk's connections (1: each request runs alone, as at c=1)")
    args = parser.parse_args()

    sim_port, upstream_key, store, key = start_upstream(args.warden, args.sim)
    port, admin = bench.free_port(), bench.free_port()
    config = bench.write_config("B", sim_port, store, True, port, admin)
    gateway_env = dict(os.environ, VLLM_API_KEY=upstream_key, LD_PRELOAD=args.shim)
    results = {"B": measure("B", [args.warden, "gateway", "--config", config], port, key, sim_port, upstream_key, args, gateway_env)}
    closing_sim_port = start_sim(args.sim, upstream_key, "closing-sim", "--no-keep-alive")
    paced_sim_port = start_sim(args.sim, upstream_key, "paced-sim", "--itl-ms", "5")
    for label, upstream_port, scenarios in (("B-new", closing_sim_port, NEW_CONNECTIONS), ("B-paced", paced_sim_port, PACED)):
        port, admin = bench.free_port(), bench.free_port()
        config = bench.write_config(label, upstream_port, store, True, port, admin)
        results["B"].update(measure(label, [args.warden, "gateway", "--config", config], port, key, upstream_port, upstream_key, args,
                                    gateway_env, scenarios))

    for label, upstream_port, scenarios in (("C", sim_port, KEEP_ALIVE), ("C-new", closing_sim_port, NEW_CONNECTIONS),
                                            ("C-paced", paced_sim_port, PACED)):
        nginx_port = bench.free_port()
        nginx_conf = bench.write_nginx(nginx_port, upstream_port, key, upstream_key, f"nginx-{label}")
        measured = measure(label, ["nginx", "-p", os.path.join(bench.WORK, f"nginx-{label}"), "-c", nginx_conf, "-g", "daemon off; master_process off;"],
                           nginx_port, key, upstream_port, upstream_key, args, scenarios=scenarios)
        results.setdefault("C", {}).update(measured)
    report(results, args)


def report(results, args):
    day = datetime.datetime.now(datetime.timezone.utc)
    stem = os.path.join(ROOT, "bench/results", f"callgrind-{day:%Y-%m-%d}" + ("" if args.connections == 8 else f"-c{args.connections}"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    lines = [f"# Instructions per request under callgrind — {day:%Y-%m-%d %H:%M} UTC", "",
             f"Command: `bench/callgrind --requests {args.requests} --stream-requests {args.stream_requests} --connections {args.connections}` "
             f"at commit {commit}. wrk -t1 -c{args.connections}, chat with max_tokens 16 (JSON) or 50 streamed events (SSE), vllm-sim upstream outside valgrind. "
             "User-space instructions of the server process only (callgrind does not see the kernel).", "",
             "| chat | warden governed (B) | nginx (C) | B/C |", "|---|---:|---:|---:|"]
    names = {"json": "JSON", "sse": "SSE", "json-new": "JSON, new connections on both sides", "sse-paced": "SSE, events 5 ms apart"}
    for name, title in names.items():
        b, c = results["B"][name]["per_request"], results["C"][name]["per_request"]
        lines.append(f"| {title} | {b:,.0f} | {c:,.0f} | {b / c:.2f}× |")
    b, c = (results[label]["sse-paced"]["per_request"] - results[label]["json"]["per_request"] for label in ("B", "C"))
    lines += ["", f"Per relayed event, roughly (the paced SSE count less the JSON one, over 50 events): B {b / 50:,.0f}, "
              f"nginx {c / 50:,.0f} instructions."]
    lines += ["", "SSE counts depend on how many events one read from vllm-sim carries, and under valgrind the gateway runs "
              "tens of times slower, so its reads batch more events than natively: compare SSE counts between runs of this "
              "script, and take bench/run's CPU time for the real ratio.",
              "", "Requests counted by vllm-sim in each window: " +
              ", ".join(f"{label} {name} {results[label][name]['requests']}" for label in results for name in results[label]) + "."]
    with open(stem + ".md", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(stem + ".json", "w") as handle:
        json.dump({label: {name: {k: v for k, v in entry.items() if k != "dump"} for name, entry in value.items()} for label, value in results.items()},
                  handle, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
