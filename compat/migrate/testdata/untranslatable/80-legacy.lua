-- A rule written for logins and for Rules' container: little of it has
-- an equivalent in an action.
local seen = setmetatable({}, { __mode = "k" })

local function count(...)
  return select("#", ...)
end

return function(user, context, callback)
  global.requests = (global.requests or 0) + 1
  local ok, parsed = pcall(json.decode, context.request.body.payload or "")
  if not ok then
    return callback(new_error("bad payload"))
  end
  local email = user.email
  local nonce = context.idToken.nonce
  local digits = string.gsub(context.clientID, "%D", "")
  context.accessToken["https://example.com/n"] = count(1, 2) + #digits
  callback(nil, user, context)
end
