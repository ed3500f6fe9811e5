-- wrk script: each request asks for one of the three files of one of COUNT devices, with
-- Basic credentials and a phone's User-Agent. The same script drives zerotouch and nginx.
local count = tonumber(os.getenv("BENCH_DEVICES") or "10000")
local auth = os.getenv("BENCH_AUTH")
local files = { ".cfg", "-device.cfg", "-profile.cfg" }
local n = 0

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  n = seed
end

function request()
  n = n + 7919
  local mac = string.format("0004f2%06x", math.floor(n / 3) % count)
  local path = "/" .. mac .. files[(n % 3) + 1]
  local ua = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 (SN:" .. mac .. ") Type/Application"
  return wrk.format("GET", path, { ["Authorization"] = auth, ["User-Agent"] = ua })
end

local errors = 0
function response(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors < 5 then io.stderr:write("unexpected status " .. status .. "\n") end
  end
end
