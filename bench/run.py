"""The gateway benchmark: vllm-sim directly (A), the Warden gateway governed (B) and with limits off (B0),
nginx with a key map and limit_req (C), and the LiteLLM proxy 1.77.7 (D), all on loopback in front of the same
vllm-sim. Driven by bench/run, which installs the tools and builds the release binaries first.

Loads are wrk runs bounded in time; every process started here is stopped on exit; only 127.0.0.1 is a target.
"""
import argparse
import atexit
import datetime
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = tempfile.mkdtemp(prefix="warden-bench-")
PROCESSES = []
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stop_all():
    for process in PROCESSES:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.time() + 15
    for process in PROCESSES:
        try:
            process.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL) if process.pid else None
            process.kill()


atexit.register(stop_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def binaries_parser():
    """The command line every bench script shares: the release `warden` and `vllm-sim` to run (its shell wrapper builds them)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--warden", required=True)
    parser.add_argument("--sim", required=True)
    return parser


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


def start(name, argv, env=None, log=None):
    log_file = open(os.path.join(WORK, f"{name}.log"), "w") if log is None else log
    process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    PROCESSES.append(process)
    return process


def tree(pid):
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                for child in handle.read().split():
                    pids += tree(int(child))
    except OSError:
        pass
    return pids


def cpu_split(pid):
    """User and system clock ticks of a process tree."""
    user = system = 0
    for member in tree(pid):
        try:
            with open(f"/proc/{member}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except OSError:
            pass
    return user, system


def cpu_ticks(pid):
    return sum(cpu_split(pid))


def rss_mib(pid):
    total = 0
    for member in tree(pid):
        try:
            with open(f"/proc/{member}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def wrk(port, connections, seconds, stream, key, path="/v1/chat/completions"):
    env = dict(os.environ, BENCH_KEY=key, BENCH_STREAM="1" if stream else "0", BENCH_MAX_TOKENS="50" if stream else "16")
    out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                          "-s", os.path.join(ROOT, "bench/lib/chat.lua"), f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, env=env, timeout=seconds + 60)
    match = re.search(r"RESULT requests=(\d+) errors=(\d+) rps=([\d.]+) p50_us=(\d+) p99_us=(\d+)", out.stdout)
    if not match:
        raise SystemExit(f"wrk failed against port {port}: {out.stdout} {out.stderr}")
    requests, errors, rps, p50, p99 = match.groups()
    return {"requests": int(requests), "errors": int(errors), "rps": float(rps), "p50_us": int(p50), "p99_us": int(p99)}


def run_once(target, connections, stream, seconds):
    before = cpu_ticks(target["pid"])
    result = wrk(target["port"], connections, seconds, stream, target["key"])
    used = cpu_ticks(target["pid"]) - before
    result["cpu_us_per_request"] = used * 1_000_000 / CLOCK_TICKS / max(1, result["requests"])
    return result


def summarize(target, runs):
    pick = lambda key: statistics.median(run[key] for run in runs)
    return {"rps": pick("rps"), "p50_us": pick("p50_us"), "p99_us": pick("p99_us"), "cpu_us": pick("cpu_us_per_request"),
            "errors": sum(run["errors"] for run in runs), "rss_mib": rss_mib(target["pid"]), "runs": runs}


def streams(port, key, count, hold, itl_label):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench/lib/slow_streams.py"), str(port), str(count), str(hold), key],
                         capture_output=True, text=True, timeout=hold + 300)
    match = re.search(r"RESULT live=(\d+) errors=(\d+) events=(\d+)(?: ttft_p50_ms=([\d.]+) ttft_p99_ms=([\d.]+) gap_p50_ms=([\d.]+) gap_p99_ms=([\d.]+))?", out.stdout)
    if not match:
        return {"error": (out.stdout + out.stderr)[-400:]}
    live, errors, events, ttft50, ttft99, gap50, gap99 = match.groups()
    return {"live": int(live), "errors": int(errors), "events": int(events), "ttft_p50_ms": float(ttft50 or 0), "ttft_p99_ms": float(ttft99 or 0),
            "gap_p50_ms": float(gap50 or 0), "gap_p99_ms": float(gap99 or 0), "itl": itl_label}


def main():
    parser = binaries_parser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--litellm", default="")
    parser.add_argument("--streams", default="1000,10000")
    args = parser.parse_args()

    upstream_key = "bench-upstream-key"
    sim_port = free_port()
    sim = start("sim", [args.sim, "--port", str(sim_port), "--api-key", upstream_key, "--served-model-name", "sim-model", "--output-tokens", "50"])
    wait_port(sim_port)

    store = os.path.join(WORK, "keys/keys.sqlite")
    key = subprocess.run([args.warden, "keys", "create", "--name", "bench", "--config", write_config("keys", sim_port, store, True)],
                         capture_output=True, text=True, check=True).stdout.strip()

    targets = {"A": {"name": "vllm-sim direct", "port": sim_port, "pid": sim.pid, "key": upstream_key}}
    for label, governed in (("B", True), ("B0", False)):
        port, admin = free_port(), free_port()
        config = write_config(label, sim_port, store, governed, port, admin)
        log = open(os.path.join(WORK, f"access-{label}.log"), "w")
        process = start(label, [args.warden, "gateway", "--config", config], env=dict(os.environ, VLLM_API_KEY=upstream_key), log=log)
        wait_port(port)
        targets[label] = {"name": "warden governed" if governed else "warden, limits off", "port": port, "pid": process.pid, "key": key, "admin": admin}
    time.sleep(1)
    for target in targets.values():
        target["idle_rss_mib"] = rss_mib(target["pid"])

    nginx_port = free_port()
    nginx_conf = write_nginx(nginx_port, sim_port, key, upstream_key)
    nginx = start("nginx", ["nginx", "-p", os.path.join(WORK, "nginx"), "-c", nginx_conf, "-g", "daemon off;"])
    wait_port(nginx_port)
    targets["C"] = {"name": "nginx key map + limit_req", "port": nginx_port, "pid": nginx.pid, "key": key, "idle_rss_mib": rss_mib(nginx.pid)}

    if args.litellm:
        litellm_port = free_port()
        litellm_conf = write_litellm(sim_port, upstream_key)
        env = dict(os.environ, LITELLM_MASTER_KEY="sk-bench-master", LITELLM_LOG="ERROR", DISABLE_ADMIN_UI="True",
                   LITELLM_TELEMETRY="False", NO_DOCS="True")
        litellm = start("litellm", [os.path.join(args.litellm, "bin/litellm"), "--config", litellm_conf, "--host", "127.0.0.1",
                                    "--port", str(litellm_port), "--num_workers", str(os.cpu_count())], env=env)
        wait_port(litellm_port, timeout=180)
        time.sleep(3)
        targets["D"] = {"name": "LiteLLM proxy 1.77.7", "port": litellm_port, "pid": litellm.pid, "key": "sk-bench-master",
                        "idle_rss_mib": rss_mib(litellm.pid)}

    # The targets take turns, one run each per repetition: this VM's neighbours come and go over minutes, and a
    # ratio of two targets measured minutes apart moved with them.
    results = {}
    for stream in (False, True):
        for connections in (1, 8, 64):
            runs = {label: [] for label in targets}
            for _ in range(args.repetitions):
                for label, target in targets.items():
                    runs[label].append(run_once(target, connections, stream, args.seconds))
            for label, target in targets.items():
                measured = summarize(target, runs[label])
                results[(label, stream, connections)] = measured
                print(f"{label:3} {'SSE ' if stream else 'JSON'} c={connections:<3} {measured['rps']:9.1f} req/s  p50 {measured['p50_us']/1000:7.2f} ms  "
                      f"p99 {measured['p99_us']/1000:7.2f} ms  cpu {measured['cpu_us']:8.1f} µs/req  errors {measured['errors']}", flush=True)

    stream_results = {}
    for count in [int(n) for n in args.streams.split(",") if n]:
        slow_port = free_port()
        slow = start(f"slow-sim-{count}", [args.sim, "--port", str(slow_port), "--api-key", upstream_key, "--served-model-name", "sim-model",
                                           "--itl-ms", "50", "--output-tokens", "100000"])
        wait_port(slow_port)
        gateway_port, admin_port = free_port(), free_port()
        config = write_config(f"slow-{count}", slow_port, store, True, gateway_port, admin_port, concurrency=count * 2)
        gateway = start(f"slow-gw-{count}", [args.warden, "gateway", "--config", config], env=dict(os.environ, VLLM_API_KEY=upstream_key),
                        log=open(os.devnull, "w"))
        wait_port(gateway_port)
        direct = streams(slow_port, upstream_key, count, 15, "50 ms")
        peak = [0.0]
        via = run_with_rss_sampling(lambda: streams(gateway_port, key, count, 15, "50 ms"), gateway.pid, peak)
        via["peak_rss_mib"] = peak[0]
        stream_results[count] = {"direct": direct, "gateway": via}
        processes = [gateway, slow]
        if count <= 1000:
            # The same burst through nginx (C's configuration): what a C proxy adds to TTFT on these 2 shared cores.
            proxy_port = free_port()
            name = f"nginx-slow-{count}"
            proxy = start(name, ["nginx", "-p", os.path.join(WORK, name), "-c", write_nginx(proxy_port, slow_port, key, upstream_key, name),
                                 "-g", "daemon off;"])
            wait_port(proxy_port)
            processes.insert(0, proxy)
            stream_results[count]["nginx"] = streams(proxy_port, key, count, 15, "50 ms")
        print(f"streams {count}: {stream_results[count]}", flush=True)
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    report(targets, results, stream_results, args)


def run_with_rss_sampling(action, pid, peak):
    import threading
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        return action()
    finally:
        done.set()
        sampler.join()


def write_config(label, sim_port, store, governed, port=None, admin=None, concurrency=100_000):
    path = os.path.join(WORK, f"warden-{label}.yaml")
    port = port or free_port()
    admin = admin or free_port()
    limits = (f"{{enabled: true, requests_per_minute: 10000000, burst: 100000, tokens_per_minute: 1000000000, "
              f"concurrency: {concurrency}, global_concurrency: {concurrency}}}") if governed else "{enabled: false}"
    with open(path, "w") as handle:
        handle.write(f"""vllm: {{model: /models/sim-model, served_model_name: sim-model}}
gateway:
  listen: 127.0.0.1:{port}
  admin_listen: 127.0.0.1:{admin}
  upstream: http://127.0.0.1:{sim_port}
  key_store: {store}
  drain_timeout: 5s
  max_connections: 30000
  limits: {limits}
  bans: {{enabled: {str(governed).lower()}}}
""")
    return path


def write_nginx(port, sim_port, key, upstream_key, name="nginx"):
    directory = os.path.join(WORK, name)
    os.makedirs(os.path.join(directory, "logs"), exist_ok=True)
    path = os.path.join(directory, "nginx.conf")
    with open(path, "w") as handle:
        handle.write(f"""worker_processes auto;
pid {directory}/nginx.pid;
error_log {directory}/logs/error.log;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    map_hash_bucket_size 256;
    map $http_authorization $api_key_ok {{ default 0; "Bearer {key}" 1; }}
    limit_req_zone $http_authorization zone=perkey:10m rate=100000r/s;
    upstream vllm {{ server 127.0.0.1:{sim_port}; keepalive 512; }}
    server {{
        listen 127.0.0.1:{port};
        location = /v1/chat/completions {{
            if ($api_key_ok = 0) {{ return 401; }}
            limit_req zone=perkey burst=100000 nodelay;
            proxy_pass http://vllm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {upstream_key}";
            proxy_buffering off;
        }}
        location / {{ return 404; }}
    }}
}}
""")
    return path


def write_litellm(sim_port, upstream_key):
    path = os.path.join(WORK, "litellm.yaml")
    with open(path, "w") as handle:
        handle.write(f"""model_list:
  - model_name: sim-model
    litellm_params:
      model: hosted_vllm/sim-model
      api_base: http://127.0.0.1:{sim_port}/v1
      api_key: {upstream_key}
      rpm: 100000000
      tpm: 1000000000
general_settings:
  master_key: sk-bench-master
litellm_settings:
  telemetry: false
""")
    return path


def report(targets, results, stream_results, args):
    date = datetime.datetime.now(datetime.timezone.utc)
    versions = {
        "swift": subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()[0] if shutil_which("swift") else "?",
        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0],
    }
    lines = [f"# Gateway benchmark — {date:%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {os.cpu_count()} cores, {platform.platform()}; {versions['swift']}; {versions['nginx']}; {versions['wrk']}; "
             f"LiteLLM {'1.77.7' if 'D' in targets else 'not run'}.",
             f"Command: `bench/run` (wrk, {args.seconds} s per run, median of {args.repetitions} runs, the targets taking turns run by run; POST chat body of bench/lib/chat.lua; "
             "SSE = 50 token events). Server CPU from /proc/<pid>/stat of each target's process tree (the gateway's own, not vllm-sim's).", "",
             "| target | mode | c | req/s | p50 ms | p99 ms | server CPU µs/req | errors | RSS MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for (label, stream, connections), value in results.items():
        lines.append(f"| {label} {targets[label]['name']} | {'SSE' if stream else 'JSON'} | {connections} | {value['rps']:.0f} | {value['p50_us']/1000:.2f} | "
                     f"{value['p99_us']/1000:.2f} | {value['cpu_us']:.1f} | {value['errors']} | {value['rss_mib']:.0f} |")
    lines += ["", "Idle RSS: " + ", ".join(f"{label} {target['idle_rss_mib']:.1f} MiB" for label, target in targets.items()), ""]

    def ratio(a, b, mode=False, c=64, key="cpu_us"):
        if (a, mode, c) in results and (b, mode, c) in results and results[(b, mode, c)][key]:
            return results[(a, mode, c)][key] / results[(b, mode, c)][key]
        return None

    summary = ["## Summary", "", "| figure | value | target |", "|---|---|---|"]
    for mode in (False, True):
        name = "SSE" if mode else "JSON"
        b_c = ratio("B", "C", mode)
        b_b0 = ratio("B", "B0", mode)
        d_b = ratio("D", "B", mode)
        if b_c is not None:
            summary.append(f"| CPU/request B/C (governed Warden vs nginx), {name} c=64 | {b_c:.2f}× | ≤ 2.0× (stretch 1.5×) |")
        if b_b0 is not None:
            summary.append(f"| CPU/request B/B0 (cost of governance), {name} c=64 | {b_b0:.2f}× | — |")
        if d_b is not None:
            summary.append(f"| CPU/request D/B (LiteLLM vs Warden), {name} c=64 | {d_b:.0f}× | ≥ 100× |")
    if ("B", False, 1) in results:
        added = (results[("B", False, 1)]["p50_us"] - results[("A", False, 1)]["p50_us"])
        summary.append(f"| added p50 latency B vs A, JSON c=1 | {added} µs | ≤ 100 µs |")
    summary.append(f"| idle RSS of the gateway (B) | {targets['B']['idle_rss_mib']:.1f} MiB | ≤ 30 MiB |")
    for count, value in stream_results.items():
        via = value["gateway"]
        if "error" in via:
            summary.append(f"| {count} concurrent slow streams | failed: {via['error'][:80]} | |")
            continue
        direct = value["direct"]
        summary.append(f"| {count} streams × 1 token / 50 ms through B: peak RSS | {via['peak_rss_mib']:.0f} MiB | {'< 300 MiB' if count >= 10000 else '—'} |")
        summary.append(f"| {count} streams: live / errors (gateway; direct) | {via['live']} / {via['errors']}; {direct.get('live')} / {direct.get('errors')} | all live, 0 errors |")
        summary.append(f"| {count} streams: TTFT p50/p99 gateway vs direct | {via['ttft_p50_ms']:.1f}/{via['ttft_p99_ms']:.1f} ms vs "
                       f"{direct.get('ttft_p50_ms', 0):.1f}/{direct.get('ttft_p99_ms', 0):.1f} ms | — |")
        if "nginx" in value and "error" not in value["nginx"]:
            proxied = value["nginx"]
            summary.append(f"| {count} streams: TTFT p50/p99 through nginx (C's configuration) | {proxied['ttft_p50_ms']:.1f}/{proxied['ttft_p99_ms']:.1f} ms "
                           f"({proxied['live']} live, {proxied['errors']} errors) | — |")
        summary.append(f"| {count} streams: event gap p50/p99 gateway vs direct | {via['gap_p50_ms']:.1f}/{via['gap_p99_ms']:.1f} ms vs "
                       f"{direct.get('gap_p50_ms', 0):.1f}/{direct.get('gap_p99_ms', 0):.1f} ms | — |")
    text = "\n".join(summary + [""] + lines) + "\n"
    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    path = os.path.join(ROOT, f"bench/results/gateway-{date:%Y-%m-%d}.md")
    with open(path, "w") as handle:
        handle.write(text)
    with open(os.path.join(ROOT, f"bench/results/gateway-{date:%Y-%m-%d}.json"), "w") as handle:
        json.dump({f"{k[0]}/{'sse' if k[1] else 'json'}/c{k[2]}": v for k, v in results.items()} | {"streams": stream_results}, handle, indent=1)
    print("\n".join(summary))
    print(f"\nreport: {path}")


def shutil_which(name):
    import shutil
    return shutil.which(name)


if __name__ == "__main__":
    main()
