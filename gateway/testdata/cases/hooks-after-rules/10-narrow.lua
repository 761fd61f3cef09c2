-- The rule narrows to read:a only.
return function(user, context, callback)
  context.accessToken.scope = { "read:a" }
  callback(nil, user, context)
end
