-- The wrk script of `make bench` (tests/bench/wrk.py runs it; Debian's wrk 4.1.0, LuaJIT).
--
-- Configured by environment variables, read when the script loads:
--   WRK_METHOD, WRK_PATH, WRK_BODY   the request ("{room}" in WRK_PATH is replaced, see WRK_ROOMS)
--   WRK_PARTICIPANT                  a fixed X-Participant-ID header
--   WRK_FRESH_ID=1                   a new random UUID (v4) as X-Participant-ID on every request
--   WRK_ROOMS=id,id,...              room ids for "{room}": each thread takes its share of them
--                                    (index ≡ thread mod WRK_THREADS), used in turn
--   WRK_FILL=N                       with WRK_ROOMS: N requests into one room, then the next one
--                                    (0, the default: round robin, one request per room in turn)
--   WRK_RATE=R                       open-loop pacing at R requests/s for all threads together
--   WRK_THREADS, WRK_SEED            the thread count given to wrk; the seed of the UUIDs
--
-- Without WRK_FRESH_ID and WRK_ROOMS the script defines no request() and wrk sends one prebuilt
-- request (its fastest mode). done() prints one line "WRK_JSON {...}": counts, errors, non-2xx
-- and the latency percentiles in microseconds.
--
-- Pacing (WRK_RATE): each thread keeps a schedule of slots, one every WRK_THREADS / WRK_RATE
-- seconds, on CLOCK_MONOTONIC read through LuaJIT's ffi. wrk calls delay() before each request
-- of a connection (after its previous answer); delay() gives that request the next free slot and
-- returns the milliseconds until it. With enough idle connections the requests leave on the
-- schedule whatever the answers' latency (open loop); a request that leaves more than one slot
-- late (every connection was busy) is counted in "late". wrk measures latency from the moment the
-- request is written, so the delay is not part of it.

local method = os.getenv("WRK_METHOD") or "GET"
local path = os.getenv("WRK_PATH") or "/"
local body = os.getenv("WRK_BODY")
local participant = os.getenv("WRK_PARTICIPANT")
local fresh = os.getenv("WRK_FRESH_ID") == "1"
local rooms_env = os.getenv("WRK_ROOMS") or ""
local fill = tonumber(os.getenv("WRK_FILL") or "0")
local rate = tonumber(os.getenv("WRK_RATE") or "0")
local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
local seed = tonumber(os.getenv("WRK_SEED") or "1")

-- main state: number the threads, keep them for done()
local threads = {}
function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

-- thread state
local my_rooms = {}
local counter = 0
late = 0

local function headers()
   local h = {}
   if body then
      h["Content-Type"] = "application/json"
   end
   if participant then
      h["X-Participant-ID"] = participant
   end
   return h
end

function init(args)
   math.randomseed(seed + 7919 * tid)
   local i = 0
   for room in string.gmatch(rooms_env, "[^,]+") do
      if i % nthreads == tid then
         table.insert(my_rooms, room)
      end
      i = i + 1
   end
   wrk.method = method
   wrk.path = path
   wrk.body = body
   for name, value in pairs(headers()) do
      wrk.headers[name] = value
   end
end

local function uuid4()
   local r = math.random
   return string.format(
      "%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
      r(0, 0xffff), r(0, 0xffff), r(0, 0xffff), r(0, 0xfff),
      r(0x8000, 0xbfff), r(0, 0xffff), r(0, 0xffff), r(0, 0xffff)
   )
end

if fresh or rooms_env ~= "" then
   function request()
      local p = path
      if #my_rooms > 0 then
         local i
         if fill > 0 then
            i = math.floor(counter / fill) % #my_rooms + 1
         else
            i = counter % #my_rooms + 1
         end
         p = string.gsub(path, "{room}", my_rooms[i])
      end
      counter = counter + 1
      local h = headers()
      if fresh then
         h["X-Participant-ID"] = uuid4()
      end
      return wrk.format(method, p, h, body)
   end
end

if rate > 0 then
   local ffi = require("ffi")
   ffi.cdef([[
      typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
      int clock_gettime(int clk_id, bench_timespec *tp);
   ]])
   local ts = ffi.new("bench_timespec")
   local function now_ms()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
   end
   local period = 1000 * nthreads / rate
   local next_slot = nil
   function delay()
      local now = now_ms()
      if next_slot == nil then
         next_slot = now
      end
      local wait = next_slot - now
      if wait < -period then
         late = late + 1
      end
      next_slot = next_slot + period
      if wait <= 0 then
         return 0
      end
      return math.floor(wait + 0.5)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local late_total = 0
   for _, thread in ipairs(threads) do
      late_total = late_total + (tonumber(thread:get("late")) or 0)
   end
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,'
         .. '"status":%d,"timeout":%d,"late":%d,"lat_min":%d,"lat_mean":%.1f,"lat_max":%d,'
         .. '"p50":%d,"p90":%d,"p99":%d,"p999":%d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, late_total, latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9)
   ))
end
