return function(user, context, callback)
  context.accessToken["https://acme.example/order"] = "rule"
  callback(nil, user, context)
end
