-- wrk script: the public result page (POST /results) for random applicants A0..A(N-1) of the
-- window ALLOT_WINDOW, each with its code `secret-<id>`; N from ALLOT_APPLICANTS. The requests are
-- made once at start (2,000 of them, cycled) so that wrk spends its CPU sending, not formatting:
-- it shares the machine with the server.
local window = os.getenv("ALLOT_WINDOW") or "load"
local n = tonumber(os.getenv("ALLOT_APPLICANTS") or "20000")
local requests = {}
local next_request = 0

init = function(args)
  math.randomseed(os.time() + (args[1] and #args[1] or 0))
  for i = 1, 2000 do
    local id = "A" .. math.random(0, n - 1)
    local body = "domain=fairs&window=" .. window .. "&id=" .. id .. "&code=secret-" .. id
    requests[i] = wrk.format("POST", "/results", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, body)
  end
end

request = function()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
