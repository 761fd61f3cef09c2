return function(user, context, callback)
  context.accessToken["https://example.com/x"] = 1
end
