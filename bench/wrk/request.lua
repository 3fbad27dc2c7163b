-- One request shape per run, from the environment (set by bench/run):
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_BODY    form body for POST (application/x-www-form-urlencoded)
--   BENCH_AUTH    value of the Authorization header, if any
-- and a machine-readable summary line at the end, parsed by bench/run:
--   RESULT <requests/s> <p50 ms> <p99 ms> <p99.9 ms> <requests> <errors>
-- where errors counts non-2xx answers and socket errors.

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local auth = os.getenv("BENCH_AUTH")

wrk.method = method
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

done = function(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT %.1f %.3f %.3f %.3f %d %d\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    summary.requests, errors))
end
