"""Drives the gateway with the LiteLLM Python SDK and its `hosted_vllm/` provider, as LiteLLM users' code does:
chat, streamed chat, embeddings, then a key with a tiny request rate until the gateway's 429 arrives as
`litellm.RateLimitError`.

Usage: litellm_check.py BASE_URL API_KEY LIMITED_KEY MODEL
Prints one JSON line with what the client counted; exits non-zero when the SDK fails or a check does not hold.
LiteLLM is kept off the network: the bundled model cost map, no telemetry, no callbacks, no retries.
"""
import json
import os
import sys

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_TELEMETRY"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

try:
    import litellm
except ImportError as error:
    sys.exit(f"litellm is not installed ({error}): run scripts/test, which installs scripts/requirements-test.txt into .venv")


def main() -> int:
    base_url, api_key, limited_key, model = sys.argv[1:5]
    litellm.telemetry = False
    litellm.callbacks = []
    litellm.success_callback = []
    litellm.failure_callback = []
    common = {"model": f"hosted_vllm/{model}", "api_base": base_url, "max_retries": 0, "num_retries": 0, "timeout": 30}
    counted = {"ok": 0, "rate_limited": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def count(usage):
        counted["ok"] += 1
        counted["prompt_tokens"] += usage.prompt_tokens
        counted["completion_tokens"] += getattr(usage, "completion_tokens", 0) or 0

    reply = litellm.completion(api_key=api_key, messages=[{"role": "user", "content": "Say hello"}], max_tokens=20, **common)
    assert reply.choices[0].message.content and reply.usage.completion_tokens > 0, reply
    count(reply.usage)

    chunks, usage = [], None
    for chunk in litellm.completion(api_key=api_key, messages=[{"role": "user", "content": "Stream it"}], max_tokens=20, stream=True,
                                    stream_options={"include_usage": True}, **common):
        if chunk.choices and chunk.choices[0].delta.content:
            chunks.append(chunk.choices[0].delta.content)
        if getattr(chunk, "usage", None):
            usage = chunk.usage
    assert chunks and usage is not None and usage.completion_tokens > 0, (chunks, usage)
    count(usage)
    counted["stream_chunks"] = len(chunks)

    embedding = litellm.embedding(api_key=api_key, input=["one sentence", "another sentence"], **common)
    assert len(embedding.data) == 2 and len(embedding.data[0]["embedding"]) > 0, embedding
    count(embedding.usage)

    # The limited key admits a burst of one request a minute: the first passes, the next is the gateway's 429.
    limited = litellm.completion(api_key=limited_key, messages=[{"role": "user", "content": "once"}], max_tokens=5, **common)
    count(limited.usage)
    try:
        litellm.completion(api_key=limited_key, messages=[{"role": "user", "content": "twice"}], max_tokens=5, **common)
        raise AssertionError("the second request of a one-per-minute key was admitted")
    except litellm.RateLimitError as error:
        assert error.status_code == 429, error
        counted["rate_limited"] += 1
        counted["rate_limit_message"] = str(error)[:200]

    print(json.dumps(counted))
    return 0


if __name__ == "__main__":
    sys.exit(main())
