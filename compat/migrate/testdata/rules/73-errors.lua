-- Refusals raised with error(), and a failure for a malformed setting.
return function(user, context, callback)
  local max = configuration.MAX_SCOPES
  if max ~= nil and tonumber(max) == nil then
    error("MAX_SCOPES is not a number")
  end
  if #context.accessToken.scope > (tonumber(max) or 3) then
    error(UnauthorizedError("too many scopes"))
  end
  if context.clientMetadata.locked == "yes" then
    callback(UnauthorizedError())
    return
  end
  callback(nil, user, context)
end
