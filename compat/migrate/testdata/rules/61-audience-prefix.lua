-- Each API accepts the scopes under its own prefix; an unknown audience
-- is refused.
local prefixes = {
  ["https://billing.example.com"] = "billing:",
  ["https://reports.example.com"] = "reports:",
}

return function(user, context, callback)
  local audience = context.request.body.audience
  local prefix = prefixes[audience or ""]
  if not prefix then
    return callback(UnauthorizedError("unknown audience " .. tostring(audience)))
  end

  local kept = {}
  for _, s in ipairs(context.accessToken.scope) do
    if string.sub(s, 1, #prefix) == prefix then
      kept[#kept + 1] = s
    end
  end
  context.accessToken.scope = kept
  context.accessToken[prefix .. "audience"] = audience
  callback(nil, user, context)
end
