-- Actions run after the hooks and see what rules and hooks left.
return {
  onExecuteCredentialsExchange = function(event, api)
    local order = event.accessToken.customClaims["https://acme.example/order"] or "?"
    local hook = event.accessToken.customClaims["https://acme.example/hook"] or "?"
    api.accessToken.setCustomClaim("https://acme.example/order", order .. "," .. hook .. ",action1")
    api.transaction.setTargetScopes({ "read:b", "write:a" })
    api.accessToken.setCustomClaim("https://acme.example/meta", {
      client = event.client.client_id, name = event.client.name, tenant = event.tenant.id,
      api = event.resource_server.identifier, protocol = event.transaction.protocol,
      requested = table.concat(event.transaction.requested_scopes, " "),
      target = table.concat(event.transaction.target_scopes, " "),
      grant = event.request.body.grant_type, secret = event.request.body.client_secret or "none",
      tier = event.client.metadata.tier, region = event.secrets.REGION,
    })
  end,
}
