-- wrk script for bench/zero_downtime.py: counts every response that is not
-- 2xx (wrk itself only counts status >= 400) and the responses per x-release
-- header, summed over wrk's threads when the run ends.
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   non2xx = 0
   releases = {}
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
   local release = headers["x-release"] or headers["X-Release"] or "?"
   releases[release] = (releases[release] or 0) + 1
end

function done(summary, latency, requests)
   local total = 0
   local per_release = {}
   for _, thread in ipairs(threads) do
      total = total + thread:get("non2xx")
      for release, count in pairs(thread:get("releases")) do
         per_release[release] = (per_release[release] or 0) + count
      end
   end
   io.write(string.format("lua non2xx %d\n", total))
   for release, count in pairs(per_release) do
      io.write(string.format("lua release %s %d\n", release, count))
   end
end
