return function(user, context, callback)
  error("boom: " .. configuration.SECRET)
end
