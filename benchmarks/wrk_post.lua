-- POSTs JSON bodies with the bearer key in env KEY: the lines of the file in
-- env BODIES, in turn (each connection's thread starts at its own offset), or
-- the single body in env BODY. Prints latency percentiles and the request
-- count as one JSON line.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KEY") or "none")

local bodies = {}
local path = os.getenv("BODIES")
if path then
  for line in io.lines(path) do bodies[#bodies + 1] = line end
else
  bodies[1] = os.getenv("BODY")
end
local next_body = math.random(#bodies)

request = function()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end

local non2xx = 0
response = function(status, headers, body)
  if status ~= 200 then non2xx = non2xx + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %f, "errors": %d, "p50_ms": %f, "p99_ms": %f}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
