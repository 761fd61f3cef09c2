-- Refuse tokens to clients whose metadata marks them suspended.
return function(user, context, callback)
  if context.clientMetadata.suspended == "true" then
    return callback(UnauthorizedError("client " .. context.clientID .. " is suspended"))
  end
  callback(nil, user, context)
end
