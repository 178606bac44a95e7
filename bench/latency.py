"""Added latency at one connection: see bench/latency."""
import statistics

import callgrind
import run as bench


def main():
    parser = bench.binaries_parser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    try:
        sim_port, upstream_key, store, key = callgrind.start_upstream(args.warden, args.sim)
        (_, port), (_, nginx_port) = callgrind.start_proxies(args.warden, sim_port, upstream_key, store, key)
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
