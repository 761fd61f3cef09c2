return function(user, context, callback)
  table.insert(context.accessToken.scope, "superuser")
  callback(nil, user, context)
end
