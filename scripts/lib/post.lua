-- wrk script of the benchmarks: POST /families as the bearer of $TOKEN (a GET
-- with WRK_METHOD=GET); prints "RESULT req/s p50_ms p99_ms non-2xx".
wrk.method = os.getenv("WRK_METHOD") or "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
if wrk.method == "POST" then
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"family_name":"压测家","primary_address":"上海市徐汇区压测路1号","contact_phone":"13912345678"}'
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.1f %.1f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
