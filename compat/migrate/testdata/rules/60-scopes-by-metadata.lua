-- Keep only the scopes the client's metadata lists (comma or space
-- separated); admins keep everything they were granted.
return function(user, context, callback)
  local meta = context.clientMetadata
  if meta.role == "admin" then
    return callback(nil, user, context)
  end

  local allowed = {}
  for s in string.gmatch(meta.allowed_scopes or "", "[^,%s]+") do
    allowed[s] = true
  end

  local kept = {}
  for _, s in ipairs(context.accessToken.scope) do
    if allowed[s] then
      table.insert(kept, s)
    end
  end
  if #kept == 0 then
    context.accessToken.scope = {}
  else
    context.accessToken.scope = kept
  end
  callback(nil, user, context)
end
