#!/usr/bin/env python3
"""The e2e test's HTTP client (runs inside the container, standard library only).

  client.py request URL [--key K] [--stream] [--max-tokens N] [--get] [--model M]
      one request; prints one JSON line: status, elapsed, and for streams the event count, whether it ended
      with `data: [DONE]`, and the first error event.
  client.py until STATUS WITHIN URL [request options]
      repeats the request every 0.1 s until it answers STATUS; prints the statuses seen and the time it took.
Exit status 0 when the request (or the wait) succeeded as described, else 1; the caller judges the JSON.
"""
import argparse, http.client, json, sys, time, urllib.parse


def request(args):
    url = urllib.parse.urlsplit(args.url)
    started = time.monotonic()
    result = {"url": args.url, "status": None}
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=args.timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if args.key:
            headers["Authorization"] = "Bearer " + args.key
        body = None
        if not args.get:
            body = json.dumps({"model": args.model, "stream": args.stream, "max_tokens": args.max_tokens,
                               "messages": [{"role": "user", "content": "hello from the e2e test"}]})
        connection.request("GET" if args.get else "POST", url.path or "/", body=body, headers=headers)
        response = connection.getresponse()
        result["status"] = response.status
        if args.stream and response.status == 200:
            events, done, error = 0, False, None
            for raw in response:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                events += 1
                if data == "[DONE]":
                    done = True
                elif error is None and '"error"' in data:
                    error = data
            result.update(events=events, done=done, error=error)
        else:
            result["body"] = response.read().decode("utf-8", "replace")[:300]
    except Exception as failure:  # the caller wants a line, not a traceback
        result["exception"] = f"{type(failure).__name__}: {failure}"
    finally:
        connection.close()
    result["elapsed"] = round(time.monotonic() - started, 3)
    return result


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("request")
    until = sub.add_parser("until")
    until.add_argument("want", type=int)
    until.add_argument("within", type=float)
    for p in (one, until):
        p.add_argument("url")
        p.add_argument("--key")
        p.add_argument("--stream", action="store_true")
        p.add_argument("--max-tokens", type=int, default=4)  # vllm-sim paces tokens: this sets the length
        p.add_argument("--get", action="store_true")
        p.add_argument("--model", default="tiny")
        p.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    if args.mode == "request":
        result = request(args)
        print(json.dumps(result), flush=True)
        ok = result["status"] == 200 and (not args.stream or (result.get("done") and not result.get("error")))
        return 0 if ok else 1
    started, seen = time.monotonic(), []
    while True:
        status = request(args)["status"]
        seen.append(status)
        elapsed = round(time.monotonic() - started, 3)
        if status == args.want or elapsed > args.within:
            break
        time.sleep(0.1)
    print(json.dumps({"want": args.want, "reached": status == args.want, "elapsed": elapsed, "statuses": seen}), flush=True)
    return 0 if status == args.want and elapsed <= args.within else 1


sys.exit(main())
