"""Drives the Responses, embeddings and audio routes with the official `openai` SDK, as users' code does.

Usage: openai_routes_check.py BASE_URL API_KEY MODEL
Prints one JSON line with what was observed; exits non-zero when the SDK fails or a check does not hold.
"""
import io
import json
import struct
import sys

import openai


def wave(seconds: int) -> bytes:
    """A silent 16 kHz mono 16-bit WAV."""
    data = b"\0" * (seconds * 32000)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
            + b"data" + struct.pack("<I", len(data)) + data)


def main() -> int:
    base_url, api_key, model = sys.argv[1:4]
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
    observed = {}

    response = client.responses.create(model=model, input="Say hello", max_output_tokens=30)
    assert response.status == "completed" and response.output_text, response
    observed["response_usage"] = [response.usage.input_tokens, response.usage.output_tokens]

    retrieved = client.responses.retrieve(response.id)
    assert retrieved.id == response.id and retrieved.output_text == response.output_text, retrieved
    observed["retrieved"] = retrieved.id

    followed = client.responses.create(model=model, input="And again", previous_response_id=response.id, max_output_tokens=30)
    assert followed.usage.input_tokens > response.usage.input_tokens + response.usage.output_tokens, followed.usage
    observed["followed_usage"] = [followed.usage.input_tokens, followed.usage.output_tokens]

    deltas, completed = [], None
    for event in client.responses.create(model=model, input=[{"role": "user", "content": "Stream it"}], max_output_tokens=30, stream=True):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.completed":
            completed = event.response
    assert completed is not None and completed.usage.output_tokens == len(deltas) > 0, (deltas, completed)
    assert "".join(deltas) == completed.output_text
    observed["stream_usage"] = [completed.usage.input_tokens, completed.usage.output_tokens]

    background = client.responses.create(model=model, input="later", background=True, max_output_tokens=30)
    cancelled = client.responses.cancel(background.id)
    assert cancelled.status == "cancelled", cancelled
    observed["cancelled"] = cancelled.status

    embedding = client.embeddings.create(model=model, input=["one sentence", "another sentence"])  # base64 on the wire
    assert len(embedding.data) == 2 and len(embedding.data[0].embedding) == 8, embedding
    observed["embedding_usage"] = embedding.usage.prompt_tokens

    transcription = client.audio.transcriptions.create(model=model, file=("a.wav", io.BytesIO(wave(2)), "audio/wav"))
    assert transcription.text, transcription
    observed["transcription"] = transcription.text

    print(json.dumps(observed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
