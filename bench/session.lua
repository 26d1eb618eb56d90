-- wrk script: each request carries one of the session cookies given after "--",
-- in turn, so the load comes from that many logged-in clients. No cookies: none sent.
local cookies = {}
local next_cookie = 0

function init(args)
  for _, cookie in ipairs(args) do
    cookies[#cookies + 1] = cookie
  end
end

function request()
  if #cookies > 0 then
    next_cookie = next_cookie % #cookies + 1
    wrk.headers["Cookie"] = cookies[next_cookie]
  end
  return wrk.format(nil)
end
