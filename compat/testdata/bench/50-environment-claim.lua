-- Stamp the environment and the client's name from configuration.
return function(user, context, callback)
  local ns = configuration.CLAIM_NAMESPACE or "https://rulesgate.dev/"
  context.accessToken[ns .. "env"] = configuration.ENVIRONMENT or "dev"
  context.accessToken[ns .. "client"] = string.lower(context.clientName or "")
  callback(nil, user, context)
end
