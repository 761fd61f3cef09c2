return function(user, context, callback)
  error(UnauthorizedError("outside business hours"))
end
