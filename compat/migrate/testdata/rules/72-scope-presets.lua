-- Scope presets: a space-separated string, a list from metadata, none,
-- or the first granted scope only.
return function(user, context, callback)
  local granted = #context.accessToken.scope
  local preset = context.clientMetadata.preset
  if preset == "readonly" then
    context.accessToken.scope = "read:claims read:users"
  elseif preset == "custom" then
    context.accessToken.scope = context.clientMetadata.scopes
  elseif preset == "none" then
    context.accessToken.scope = {}
  elseif preset == "first" then
    context.accessToken.scope = { context.accessToken.scope[1] }
  end
  context.accessToken["https://example.com/granted"] = granted
  callback(nil, user, context)
end
