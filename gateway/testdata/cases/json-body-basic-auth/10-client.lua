return function(user, context, callback)
  context.accessToken["https://example.com/client"] = context.clientID
  context.accessToken["https://example.com/requested"] = context.request.body.scope
  callback(nil, user, context)
end
