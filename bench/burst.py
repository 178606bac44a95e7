"""A burst of 1,000 slow streams (one token every 50 ms) straight to vllm-sim, then through the governed gateway with
its upstream pool cold (every stream opens a connection to vLLM), warmed (1,000 short requests at 1,000 connections
just before leave idle connections behind), and cold again: what opening upstream connections adds to the time to
first token. Driven by bench/burst; prints one line per burst with the gateway's and vllm-sim's CPU time."""
import argparse
import os
import subprocess
import time

import run as bench


def cpu_ms(pid):
    """User and system CPU of a process tree, in milliseconds."""
    return bench.cpu_ticks(pid) * 1000 // bench.CLOCK_TICKS


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--warden", required=True)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--streams", type=int, default=1000)
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
        port, admin = bench.free_port(), bench.free_port()
        gateway = bench.start("gateway", [args.warden, "gateway", "--config",
                                          bench.write_config("burst", sim_port, store, True, port, admin, concurrency=args.streams * 4)],
                              env=dict(os.environ, VLLM_API_KEY=upstream_key), log=open(os.devnull, "w"))
        bench.wait_port(port)

        def burst(label, target_port, stream_key):
            gateway_before, sim_before = cpu_ms(gateway.pid), cpu_ms(sim.pid)
            result = bench.streams(target_port, stream_key, args.streams, 3, "50 ms")
            print(f"{label:32} TTFT p50/p99 {result.get('ttft_p50_ms')}/{result.get('ttft_p99_ms')} ms  live {result.get('live')} "
                  f"errors {result.get('errors')}  gateway CPU {cpu_ms(gateway.pid) - gateway_before} ms  "
                  f"vllm-sim CPU {cpu_ms(sim.pid) - sim_before} ms", flush=True)

        burst("direct to vllm-sim", sim_port, upstream_key)
        burst("through the gateway, pool cold", port, key)
        # Short requests at as many connections leave that many idle connections in the pool (up to 512 per loop).
        warm = subprocess.run(["wrk", "-t2", f"-c{args.streams}", "-d3s", "--timeout", "10s", "-s", os.path.join(bench.ROOT, "bench/lib/chat.lua"),
                               f"http://127.0.0.1:{port}/v1/chat/completions"], capture_output=True, text=True,
                              env=dict(os.environ, BENCH_KEY=key, BENCH_STREAM="0", BENCH_MAX_TOKENS="1"))
        print("warm-up:", warm.stdout.strip().splitlines()[-1] if warm.stdout.strip() else warm.stderr[-200:], flush=True)
        time.sleep(1)
        burst("through the gateway, pool warm", port, key)
        burst("through the gateway, cold again", port, key)
    finally:
        bench.stop_all()


if __name__ == "__main__":
    main()
