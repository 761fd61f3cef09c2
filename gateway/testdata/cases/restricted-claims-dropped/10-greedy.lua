-- Auth0 does: writes to restricted claims are dropped, the token is still issued.
return function(user, context, callback)
  context.accessToken.sub = "someone-else"
  context.accessToken.permissions = { "everything" }
  context.accessToken.exp = 9999999999
  context.accessToken["https://tenant.auth0.com/x"] = 1
  context.accessToken["urn:auth0:thing"] = 1
  context.accessToken["https://example.com/ok"] = true
  callback(nil, user, context)
end
