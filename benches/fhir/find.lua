-- wrk script: IHE $find (POST Parameters) for a patient whose home is a random point around
-- Moscow's centre, asking for 5 therapist proposals. Token from ALLOT_TOKEN.
local token = os.getenv("ALLOT_TOKEN") or ""
local counter = 0

request = function()
  counter = counter + 1
  local lat = 55.60 + math.random() * 0.30
  local lon = 37.40 + math.random() * 0.45
  local body = string.format(
    '{"resourceType":"Parameters","parameter":[' ..
    '{"name":"specialty","valueCoding":{"code":"therapist"}},' ..
    '{"name":"patient-resource","resource":{"resourceType":"Patient","id":"W%d",' ..
    '"address":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/geolocation",' ..
    '"extension":[{"url":"latitude","valueDecimal":%.5f},{"url":"longitude","valueDecimal":%.5f}]}]}]}},' ..
    '{"name":"_count","valueInteger":5}]}', counter, lat, lon)
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/fhir+json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("FHIR $find: %.0f requests/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, errors %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
