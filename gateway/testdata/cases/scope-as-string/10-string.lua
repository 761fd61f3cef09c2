-- Auth0's own examples assign a space-separated string.
return function(user, context, callback)
  context.accessToken.scope = "read:a admin"
  callback(nil, user, context)
end
