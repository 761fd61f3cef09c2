-- Narrow a machine-to-machine token to the scopes the client asked for.
-- Auth0 puts every granted scope in the token, whatever the request says;
-- this is the rule most tenants wrote to change that.
return function(user, context, callback)
  local requested = context.request.body.scope or context.request.query.scope
  if requested == nil or requested == "" then
    return callback(nil, user, context)
  end

  local wanted = {}
  for s in string.gmatch(requested, "%S+") do
    wanted[s] = true
  end

  local kept = {}
  for _, s in ipairs(context.accessToken.scope) do
    if wanted[s] then
      table.insert(kept, s)
    end
  end
  context.accessToken.scope = kept
  callback(nil, user, context)
end
