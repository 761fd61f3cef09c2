-- Auth0 does: api.access.deny(code, reason) refuses the token with that code.
return {
  onExecuteCredentialsExchange = function(event, api)
    if event.client.metadata.blocked == "yes" then
      api.access.deny("invalid_request", "client " .. event.client.client_id .. " is blocked")
    end
  end,
}
