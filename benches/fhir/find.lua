-- wrk script: IHE $find (POST Parameters) for patients whose homes are random points around
-- Moscow's centre, asking for 5 therapist proposals; token from ALLOT_TOKEN. The requests are
-- made once at start (1,000 of them, cycled) so that wrk spends its CPU sending, not formatting:
-- it shares the machine with the server.
local token = os.getenv("ALLOT_TOKEN") or ""
local requests = {}
local next_request = 0

init = function(args)
  for i = 1, 1000 do
    local lat = 55.60 + math.random() * 0.30
    local lon = 37.40 + math.random() * 0.45
    local body = string.format(
      '{"resourceType":"Parameters","parameter":[' ..
      '{"name":"specialty","valueCoding":{"code":"therapist"}},' ..
      '{"name":"patient-resource","resource":{"resourceType":"Patient","id":"W%d",' ..
      '"address":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/geolocation",' ..
      '"extension":[{"url":"latitude","valueDecimal":%.5f},{"url":"longitude","valueDecimal":%.5f}]}]}]}},' ..
      '{"name":"_count","valueInteger":5}]}', i, lat, lon)
    requests[i] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/fhir+json",
      ["Authorization"] = "Bearer " .. token,
    }, body)
  end
end

request = function()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

done = function(summary, latency, requests)
  io.write(string.format("FHIR $find: %.0f requests/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, errors %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
