"""Bursts of 1,000 slow streams (one token every 50 ms) started at once: straight to vllm-sim, through the governed
gateway and through nginx (bench/run's configuration C), in turn, for several rounds. One burst's time to first token
swings by tens of milliseconds on this 2-core VM (the client, vllm-sim and the proxy share the cores), so a verdict
takes the median of the rounds, and the proxies are compared in the same rounds. Each burst opens every connection
afresh, on both sides of the proxy (its upstream pool holds none of them). A last burst through the gateway runs
with its upstream pool warmed, to show what opening connections to vLLM costs. Driven by bench/burst; prints a line
per burst and the medians, with the CPU each process spent per burst."""
import os
import statistics
import subprocess
import time

import run as bench


def cpu_ms(pid):
    """User and system CPU of a process tree, in milliseconds."""
    user, system = bench.cpu_split(pid)
    return user * 1000 // bench.CLOCK_TICKS, system * 1000 // bench.CLOCK_TICKS


def main():
    parser = bench.binaries_parser()
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each burst's streams are read once all have started")
    parser.add_argument("--compare-warden", help="another warden binary (an older build), run as a second gateway in the same rounds")
    args = parser.parse_args()
    try:
        upstream_key = "bench-upstream-key"
        sim_port = bench.free_port()
        sim = bench.start("slow-sim", [args.sim, "--port", str(sim_port), "--api-key", upstream_key, "--served-model-name", "sim-model",
                                       "--itl-ms", "50", "--output-tokens", "100000"])
        bench.wait_port(sim_port)
        store = os.path.join(bench.WORK, "keys/keys.sqlite")
        key = subprocess.run([args.warden, "keys", "create", "--name", "bench", "--config", bench.write_config("keys", sim_port, store, True)],
                             capture_output=True, text=True, check=True).stdout.strip()

        def start_gateway(label, warden):
            port, admin = bench.free_port(), bench.free_port()
            process = bench.start(label, [warden, "gateway", "--config",
                                          bench.write_config(label, sim_port, store, True, port, admin, concurrency=args.streams * 4)],
                                  env=dict(os.environ, VLLM_API_KEY=upstream_key), log=open(os.devnull, "w"))
            bench.wait_port(port)
            return port, key, process

        targets = {"direct": (sim_port, upstream_key, None), "gateway": start_gateway("gateway", args.warden)}
        if args.compare_warden:
            targets["compared"] = start_gateway("compared", args.compare_warden)
        nginx_port = bench.free_port()
        nginx = bench.start("nginx-burst", ["nginx", "-p", os.path.join(bench.WORK, "nginx-burst"), "-c",
                                            bench.write_nginx(nginx_port, sim_port, key, upstream_key, "nginx-burst"), "-g", "daemon off;"])
        bench.wait_port(nginx_port)
        targets["nginx"] = (nginx_port, key, nginx)

        def burst(label, target):
            target_port, stream_key, proxy = target
            proxy_before, sim_before = cpu_ms(proxy.pid) if proxy else (0, 0), cpu_ms(sim.pid)
            result = bench.streams(target_port, stream_key, args.streams, args.hold, "50 ms")
            proxy_after, sim_after = cpu_ms(proxy.pid) if proxy else (0, 0), cpu_ms(sim.pid)
            cpu = (proxy_after[0] - proxy_before[0], proxy_after[1] - proxy_before[1], sum(sim_after) - sum(sim_before))
            print(f"{label:34} TTFT p50/p99 {result.get('ttft_p50_ms')}/{result.get('ttft_p99_ms')} ms  live {result.get('live')} "
                  f"errors {result.get('errors')}  proxy CPU user/system {cpu[0]}/{cpu[1]} ms  vllm-sim CPU {cpu[2]} ms", flush=True)
            time.sleep(1)
            return result, cpu

        rounds = {name: [] for name in targets}
        for index in range(args.rounds):
            for name, target in targets.items():
                rounds[name].append(burst(f"round {index + 1}: {name}", target))

        # Short requests at as many connections leave that many idle connections in the gateway's pool (up to 512 per loop).
        warm = subprocess.run(["wrk", "-t2", f"-c{args.streams}", "-d3s", "--timeout", "10s", "-s", os.path.join(bench.ROOT, "bench/lib/chat.lua"),
                               f"http://127.0.0.1:{targets['gateway'][0]}/v1/chat/completions"], capture_output=True, text=True,
                              env=dict(os.environ, BENCH_KEY=key, BENCH_STREAM="0", BENCH_MAX_TOKENS="1"))
        print("warm-up:", warm.stdout.strip().splitlines()[-1] if warm.stdout.strip() else warm.stderr[-200:], flush=True)
        time.sleep(1)
        burst("gateway, upstream pool warm", targets["gateway"])

        print(f"\nMedians of {args.rounds} rounds, {args.streams} streams each:")
        for name, results in rounds.items():
            p50 = statistics.median(r.get("ttft_p50_ms", 0) for r, _ in results)
            p99 = statistics.median(r.get("ttft_p99_ms", 0) for r, _ in results)
            user = statistics.median(c[0] for _, c in results)
            system = statistics.median(c[1] for _, c in results)
            errors = sum(r.get("errors", 0) for r, _ in results)
            print(f"  {name:9} TTFT p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  proxy CPU per burst user {user} ms, system {system} ms  errors {errors}")
        # Each proxy against the direct burst of the same round: the host's speed moves between rounds, and a
        # difference taken within a round cancels most of it.
        print("Added over direct, median of the per-round differences:")
        for name, results in rounds.items():
            if name == "direct":
                continue
            added = [(r.get("ttft_p50_ms", 0) - d.get("ttft_p50_ms", 0), r.get("ttft_p99_ms", 0) - d.get("ttft_p99_ms", 0))
                     for (r, _), (d, _) in zip(results, rounds["direct"])]
            print(f"  {name:9} TTFT p50 +{statistics.median(a for a, _ in added):.1f} ms  p99 +{statistics.median(b for _, b in added):.1f} ms")
    finally:
        bench.stop_all()


if __name__ == "__main__":
    main()
