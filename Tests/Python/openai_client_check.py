"""Drives an OpenAI-compatible server with the official `openai` SDK, as users' code does.

Usage: openai_client_check.py BASE_URL API_KEY MODEL
Prints one JSON line with what was observed; exits non-zero when the SDK fails or a check does not hold.
"""
import json
import sys

import openai


def main() -> int:
    base_url, api_key, model = sys.argv[1:4]
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
    observed = {}

    chat = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=5)
    assert chat.choices[0].message.role == "assistant", chat
    assert chat.usage is not None and chat.usage.completion_tokens == 5, chat.usage
    observed["chat_text"] = chat.choices[0].message.content
    observed["chat_usage"] = chat.usage.model_dump()

    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=4, stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    assert usage is not None and usage.completion_tokens == 4, usage
    assert len(pieces) == 4 and finish == "length", (pieces, finish)
    observed["chat_stream_text"] = "".join(pieces)
    observed["chat_stream_usage"] = usage.model_dump()

    completion = client.completions.create(model=model, prompt="Once upon a time", max_tokens=3)
    assert completion.usage.completion_tokens == 3, completion.usage
    observed["completion_text"] = completion.choices[0].text

    texts, saw_usage = [], False
    for chunk in client.completions.create(model=model, prompt="Once upon a time", max_tokens=3, stream=True):
        saw_usage = saw_usage or chunk.usage is not None
        texts.extend(choice.text for choice in chunk.choices)
    assert len(texts) == 3 and not saw_usage, (texts, saw_usage)
    observed["completion_stream_text"] = "".join(texts)

    models = client.models.list()
    observed["models"] = [entry.id for entry in models.data]

    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("unknown model was accepted")
    except openai.NotFoundError as error:
        observed["unknown_model_status"] = error.status_code

    print(json.dumps(observed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
