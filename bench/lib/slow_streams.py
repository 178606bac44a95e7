"""Open N concurrent streaming chat requests to 127.0.0.1:PORT and keep reading them.

Usage: slow_streams.py PORT N HOLD_SECONDS [KEY]
Prints `LIVE n` once every stream has its response head, reads for HOLD_SECONDS, then prints
`RESULT live=<n> errors=<n> events=<n> ttft_p50_ms=… ttft_p99_ms=… gap_p50_ms=… gap_p99_ms=…` and closes everything.
Timing is sampled on the first 200 streams (time to first event, and gaps between events).
"""
import asyncio
import resource
import statistics
import sys
import time

PORT, COUNT, HOLD = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
KEY = sys.argv[4] if len(sys.argv) > 4 else "bench-key"
BODY = b'{"model":"sim-model","messages":[{"role":"user","content":"Hello"}],"stream":true}'
REQUEST = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
SAMPLED = 200

events = 0
errors = 0
ttfts = []
gaps = []


async def one(index, started, stop):
    global events, errors
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        sent = time.monotonic()
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head[:40])
        started.append(1)
        last = None
        while not stop.is_set():
            data = await reader.read(65536)
            if not data:
                raise RuntimeError("closed early")
            count = data.count(b"data: ")
            events += count
            if index < SAMPLED and count:
                now = time.monotonic()
                if last is None:
                    ttfts.append((now - sent) * 1000)
                else:
                    gaps.append((now - last) * 1000)
                last = now
        writer.close()
    except Exception:
        errors += 1


def percentile(values, fraction):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, COUNT * 2 + 1024), hard))
    started, stop = [], asyncio.Event()
    tasks = []
    for index in range(COUNT):
        tasks.append(asyncio.create_task(one(index, started, stop)))
        if index % 500 == 499:
            await asyncio.sleep(0.05)
    deadline = time.monotonic() + 120
    while len(started) + errors < COUNT and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    print(f"LIVE {len(started)}", flush=True)
    await asyncio.sleep(HOLD)
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    print(f"RESULT live={len(started)} errors={errors} events={events} ttft_p50_ms={percentile(ttfts, 0.5):.1f} "
          f"ttft_p99_ms={percentile(ttfts, 0.99):.1f} gap_p50_ms={percentile(gaps, 0.5):.1f} gap_p99_ms={percentile(gaps, 0.99):.1f}", flush=True)


asyncio.run(main())
