"""User and kernel CPU per request of the governed gateway (B) and nginx (C): see bench/cpusplit."""

import callgrind
import run as bench


def main():
    parser = bench.binaries_parser()
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--repetitions", type=int, default=2)
    args = parser.parse_args()
    try:
        sim_port, upstream_key, store, key = callgrind.start_upstream(args.warden, args.sim)
        # The same 50 events, 5 ms apart as a model paces them: each event is a read and a write of its own.
        paced_port = callgrind.start_sim(args.sim, upstream_key, "paced-sim", "--itl-ms", "5")
        proxies = {upstream: callgrind.start_proxies(args.warden, upstream, upstream_key, store, key) for upstream in (sim_port, paced_port)}
        scenarios = [("JSON", sim_port, False, 1), ("JSON", sim_port, False, 64), ("SSE, 50 events back to back", sim_port, True, 64),
                     ("SSE, 50 events 5 ms apart", paced_port, True, 64)]
        print("| chat | c | target | req/s | p50 µs | user µs/req | kernel µs/req | total µs/req |\n|---|---|---|---|---|---|---|---|")
        for chat, upstream, stream, connections in scenarios:
            (gateway, port), (nginx, nginx_port) = proxies[upstream]
            for _ in range(args.repetitions):
                for label, pid, target_port in (("B warden governed", gateway.pid, port), ("C nginx", nginx.pid, nginx_port)):
                    user0, system0 = bench.cpu_split(pid)
                    result = bench.wrk(target_port, connections, args.seconds, stream, key)
                    user1, system1 = bench.cpu_split(pid)
                    scale = 1e6 / bench.CLOCK_TICKS / result["requests"]
                    print(f"| {chat} | {connections} | {label} | {result['rps']:.0f} | {result['p50_us']} | {(user1 - user0) * scale:.1f} | "
                          f"{(system1 - system0) * scale:.1f} | {((user1 - user0) + (system1 - system0)) * scale:.1f} |", flush=True)
    finally:
        bench.stop_all()


if __name__ == "__main__":
    main()
