-- wrk: POST a small chat completion with a Bearer key (BENCH_KEY), optionally streaming (BENCH_STREAM=1).
wrk.method = "POST"
local stream = os.getenv("BENCH_STREAM") == "1"
wrk.body = '{"model":"sim-model","messages":[{"role":"user","content":"Hello, how are you today?"}],"max_tokens":'
  .. (os.getenv("BENCH_MAX_TOKENS") or "16") .. (stream and ',"stream":true' or '') .. '}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "bench-key")
-- BENCH_CLOSE=1: every request on a connection of its own (wrk reconnects after each response).
if os.getenv("BENCH_CLOSE") == "1" then wrk.headers["Connection"] = "close" end

-- BENCH_REQUESTS: stop after that many responses (one wrk thread), for counts that do not depend on time.
local limit = tonumber(os.getenv("BENCH_REQUESTS") or "0")
if limit > 0 then
  local seen = 0
  function response(status, headers, body)
    seen = seen + 1
    if seen >= limit then wrk.thread:stop() end
  end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d rps=%.1f p50_us=%d p99_us=%d\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99)))
end
