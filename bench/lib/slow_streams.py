"""Open N concurrent streaming chat requests to HOST:PORT and keep reading them; report when all are live.

Usage: slow_streams.py PORT N HOLD_SECONDS [KEY]
Prints `LIVE n` once every stream has its response head, waits HOLD_SECONDS while draining events,
then prints `RESULT live=<n> errors=<n> events=<n>` and closes everything.
"""
import asyncio
import resource
import sys

PORT, COUNT, HOLD = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
KEY = sys.argv[4] if len(sys.argv) > 4 else "bench-key"
BODY = b'{"model":"sim-model","messages":[{"role":"user","content":"Hello"}],"stream":true}'
REQUEST = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)

events = 0
errors = 0


async def one(started, stop):
    global events, errors
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head[:40])
        started.append(1)
        while not stop.is_set():
            data = await reader.read(65536)
            if not data:
                raise RuntimeError("closed early")
            events += data.count(b"data: ")
        writer.close()
    except Exception:
        errors += 1


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, COUNT * 2 + 1024), hard))
    started, stop = [], asyncio.Event()
    tasks = []
    for index in range(COUNT):
        tasks.append(asyncio.create_task(one(started, stop)))
        if index % 500 == 499:
            await asyncio.sleep(0.05)
    while len(started) + errors < COUNT:
        await asyncio.sleep(0.1)
    print(f"LIVE {len(started)}", flush=True)
    await asyncio.sleep(HOLD)
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    print(f"RESULT live={len(started)} errors={errors} events={events}", flush=True)


asyncio.run(main())
