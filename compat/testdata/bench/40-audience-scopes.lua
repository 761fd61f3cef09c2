-- Scopes allowed per API: a client never gets more than its audience allows.
local allowed = {
  ["https://api.example.com"] = { ["read:claims"] = true, ["write:claims"] = true },
}

return function(user, context, callback)
  local audience = context.request.body.audience or ""
  local table_for = allowed[audience]
  if table_for == nil then
    return callback(nil, user, context)
  end
  local kept = {}
  for _, s in ipairs(context.accessToken.scope) do
    if table_for[s] then
      kept[#kept + 1] = s
    end
  end
  context.accessToken.scope = kept
  callback(nil, user, context)
end
