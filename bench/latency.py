"""Added latency at one connection: see bench/latency."""
import os
import statistics

import callgrind
import run as bench


def main():
    parser = bench.binaries_parser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--candidate", default="", help="a second warden binary, measured as D in the same rounds (an A/B of a change)")
    args = parser.parse_args()
    try:
        sim_port, upstream_key, store, key = callgrind.start_upstream(args.warden, args.sim)
        (_, port), (_, nginx_port) = callgrind.start_proxies(args.warden, sim_port, upstream_key, store, key)
        targets = [("A", sim_port, upstream_key), ("B", port, key), ("C", nginx_port, key)]
        if args.candidate:
            targets.append(("D", start_candidate(args.candidate, sim_port, upstream_key, store), key))
        for _, target_port, target_key in targets:
            bench.wrk(target_port, 1, 1, False, target_key)  # warm-up: connections, pools, lazily built state
        added = {label: [] for label, _, _ in targets[1:]}
        print("| round | " + " | ".join(f"{label} p50 µs" for label, _, _ in targets) + " | " + " | ".join(f"{label} − A" for label in added) + " |")
        print("|---" * (len(targets) + len(added) + 1) + "|")
        for index in range(args.rounds):
            p50 = {label: bench.wrk(target_port, 1, args.seconds, False, target_key)["p50_us"] for label, target_port, target_key in targets}
            for label in added:
                added[label].append(p50[label] - p50["A"])
            print(f"| {index + 1} | " + " | ".join(str(p50[label]) for label, _, _ in targets) + " | "
                  + " | ".join(str(values[-1]) for values in added.values()) + " |", flush=True)
        names = {"B": "gateway (B)", "C": "nginx (C)", "D": "candidate gateway (D)"}
        print(f"\nMedian added p50 over {args.rounds} rounds: " + ", ".join(
            f"{names[label]} {statistics.median(values)} µs (range {min(values)}–{max(values)})" for label, values in added.items()))
    finally:
        bench.stop_all()


def start_candidate(warden, sim_port, upstream_key, store):
    """A second gateway, from another build, on the same key store and upstream as B."""
    port, admin = bench.free_port(), bench.free_port()
    bench.start("D", [warden, "gateway", "--config", bench.write_config("D", sim_port, store, True, port, admin)],
                env=dict(os.environ, VLLM_API_KEY=upstream_key), log=open(os.devnull, "w"))
    bench.wait_port(port)
    return port


if __name__ == "__main__":
    main()
