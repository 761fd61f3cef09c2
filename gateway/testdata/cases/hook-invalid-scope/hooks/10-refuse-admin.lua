-- Auth0 does: InvalidScopeError gives 400 invalid_scope with its message.
return function(client, scope, audience, context, cb)
  for _, s in ipairs(scope or {}) do
    if s == "admin" then
      return cb(InvalidScopeError("admin may not be requested by " .. client.id))
    end
  end
  cb(nil, { scope = scope })
end
