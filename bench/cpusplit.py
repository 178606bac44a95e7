"""User and kernel CPU per JSON request of the governed gateway (B) and nginx (C): see bench/cpusplit."""
import argparse
import os
import subprocess

import run as bench


def cpu_ticks(pid):
    """(user, system) clock ticks of a process tree."""
    user = system = 0
    for member in bench.tree(pid):
        try:
            fields = open(f"/proc/{member}/stat").read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except OSError:
            pass
    return user, system


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--warden", required=True)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--repetitions", type=int, default=2)
    args = parser.parse_args()
    try:
        upstream_key = "bench-upstream-key"
        sim_port = bench.free_port()
        bench.start("sim", [args.sim, "--port", str(sim_port), "--api-key", upstream_key, "--served-model-name", "sim-model", "--output-tokens", "50"])
        bench.wait_port(sim_port)
        store = os.path.join(bench.WORK, "keys/keys.sqlite")
        key = subprocess.run([args.warden, "keys", "create", "--name", "bench", "--config", bench.write_config("keys", sim_port, store, True)],
                             capture_output=True, text=True, check=True).stdout.strip()
        port, admin = bench.free_port(), bench.free_port()
        gateway = bench.start("B", [args.warden, "gateway", "--config", bench.write_config("B", sim_port, store, True, port, admin)],
                              env=dict(os.environ, VLLM_API_KEY=upstream_key), log=open(os.devnull, "w"))
        bench.wait_port(port)
        nginx_port = bench.free_port()
        nginx = bench.start("nginx", ["nginx", "-p", os.path.join(bench.WORK, "nginx"), "-c", bench.write_nginx(nginx_port, sim_port, key, upstream_key),
                                      "-g", "daemon off;"])
        bench.wait_port(nginx_port)
        print("| c | target | req/s | p50 µs | user µs/req | kernel µs/req | total µs/req |\n|---|---|---|---|---|---|---|")
        for connections in (1, 64):
            for _ in range(args.repetitions):
                for label, pid, target_port in (("B warden governed", gateway.pid, port), ("C nginx", nginx.pid, nginx_port)):
                    user0, system0 = cpu_ticks(pid)
                    result = bench.wrk(target_port, connections, args.seconds, False, key)
                    user1, system1 = cpu_ticks(pid)
                    scale = 1e6 / bench.CLOCK_TICKS / result["requests"]
                    print(f"| {connections} | {label} | {result['rps']:.0f} | {result['p50_us']} | {(user1 - user0) * scale:.1f} | "
                          f"{(system1 - system0) * scale:.1f} | {((user1 - user0) + (system1 - system0)) * scale:.1f} |", flush=True)
    finally:
        bench.stop_all()


if __name__ == "__main__":
    main()
