-- Auth0 does: a client-credentials-exchange hook calls back with the access
-- token; its scope array replaces the scopes, other keys are claims.
return function(client, scope, audience, context, cb)
  local token = {}
  token.scope = { "read:a", "write:a", "admin" } -- admin is not granted
  token["https://acme.example/client"] = client.id .. "@" .. client.tenant
  token["https://acme.example/requested"] = table.concat(scope or {}, ",")
  token["https://acme.example/env"] = context.webtask.secrets.ENV
  token["https://acme.example/audience"] = audience
  cb(nil, token)
end
