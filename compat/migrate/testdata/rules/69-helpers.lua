-- Local helper functions, early returns and Lua's and/or idiom.
local reserved = { "admin:all", "root" }

local function has(list, value)
  for _, v in ipairs(list) do
    if v == value then
      return true
    end
  end
  return false
end

local function split(s)
  local out = {}
  for w in string.gmatch(s, "%S+") do
    out[#out + 1] = w
  end
  return out
end

return function(user, context, callback)
  local requested = split(context.request.body.scope or "")
  if #requested == 0 then
    return callback(nil, user, context)
  end

  local granted = {}
  for _, s in ipairs(context.accessToken.scope) do
    granted[s] = true
  end
  for _, s in ipairs(requested) do
    if has(reserved, s) then
      return callback(UnauthorizedError("scope " .. s .. " is reserved"))
    end
    if not granted[s] then
      return callback(UnauthorizedError("scope " .. s .. " is not granted"))
    end
  end

  local mode = context.request.body.mode
  local label = mode == "strict" and "strict" or "lenient"
  context.accessToken["https://example.com/mode"] = label
  context.accessToken["https://example.com/requested"] = #requested
  callback(nil, user, context)
end
