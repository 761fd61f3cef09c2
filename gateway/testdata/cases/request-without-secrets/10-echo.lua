-- Copies what a rule can see of the request into a claim.
return function(user, context, callback)
  local body = context.request.body
  context.accessToken["https://example.com/request"] = {
    client = context.clientID,
    secret_seen = body.client_secret ~= nil,
    assertion_seen = body.client_assertion ~= nil,
    ua = context.request.userAgent,
    protocol = context.protocol,
    grant_type = body.grant_type,
  }
  callback(nil, user, context)
end
