-- Rate limits by tier and region, with early refusals.
return function(user, context, callback)
  local meta = context.clientMetadata
  local tier = meta.tier
  if tier == "gold" then
    context.accessToken["https://example.com/rate"] = 1000
  elseif tier == "silver" then
    if meta.region == "eu" then
      context.accessToken["https://example.com/rate"] = 500
    else
      context.accessToken["https://example.com/rate"] = 300
    end
  elseif tier == nil then
    if context.protocol ~= "oauth2-client-credentials" then
      return callback(UnauthorizedError("untiered clients use client credentials only"))
    end
    context.accessToken["https://example.com/rate"] = 10
  else
    return callback(UnauthorizedError("unknown tier " .. tier))
  end

  if meta.beta == "true" and tier ~= "gold" then
    table.insert(context.accessToken.scope, "beta:access")
  end
  callback(nil, user, context)
end
