-- Claims from the tenant's settings: the client's team from a
-- "client=team,client=team" list, and the environment.
return function(user, context, callback)
  local ns = configuration.CLAIM_NAMESPACE or "https://example.com/"
  local teams = configuration.TEAMS or ""

  for pair in string.gmatch(teams, "[^,]+") do
    local eq = string.find(pair, "=", 1, true)
    if eq then
      local id = string.sub(pair, 1, eq - 1)
      if id == context.clientID then
        context.accessToken[ns .. "team"] = string.sub(pair, eq + 1)
      end
    end
  end

  context.accessToken[ns .. "env"] = string.upper(configuration.ENVIRONMENT or "dev")
  callback(nil, user, context)
end
