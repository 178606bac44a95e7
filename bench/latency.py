"""Added latency at one connection: see bench/latency."""
import argparse
import os
import statistics

import callgrind
import run as bench


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--warden", required=True)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    try:
        sim_port, upstream_key, store, key = callgrind.start_upstream(args.warden, args.sim)
        port, admin = bench.free_port(), bench.free_port()
        bench.start("B", [args.warden, "gateway", "--config", bench.write_config("B", sim_port, store, True, port, admin)],
                    env=dict(os.environ, VLLM_API_KEY=upstream_key), log=open(os.devnull, "w"))
        nginx_port = bench.free_port()
        bench.start("nginx", ["nginx", "-p", os.path.join(bench.WORK, "nginx"), "-c", bench.write_nginx(nginx_port, sim_port, key, upstream_key),
                              "-g", "daemon off;"])
        bench.wait_port(port)
        bench.wait_port(nginx_port)
        targets = (("A", sim_port, upstream_key), ("B", port, key), ("C", nginx_port, key))
        for _, target_port, target_key in targets:
            bench.wrk(target_port, 1, 1, False, target_key)  # warm-up: connections, pools, lazily built state
        added = {"B": [], "C": []}
        print("| round | A p50 µs | B p50 µs | C p50 µs | B − A | C − A |\n|---|---|---|---|---|---|")
        for index in range(args.rounds):
            p50 = {label: bench.wrk(target_port, 1, args.seconds, False, target_key)["p50_us"] for label, target_port, target_key in targets}
            for label in added:
                added[label].append(p50[label] - p50["A"])
            print(f"| {index + 1} | {p50['A']} | {p50['B']} | {p50['C']} | {added['B'][-1]} | {added['C'][-1]} |", flush=True)
        print(f"\nMedian added p50 over {args.rounds} rounds: gateway (B) {statistics.median(added['B'])} µs "
              f"(range {min(added['B'])}–{max(added['B'])}), nginx (C) {statistics.median(added['C'])} µs "
              f"(range {min(added['C'])}–{max(added['C'])})")
    finally:
        bench.stop_all()


if __name__ == "__main__":
    main()
