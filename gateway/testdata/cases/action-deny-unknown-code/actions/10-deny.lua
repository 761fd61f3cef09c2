-- Auth0 does: only invalid_scope, invalid_request and server_error; another
-- code is the action's error.
return {
  onExecuteCredentialsExchange = function(event, api)
    api.access.deny("unauthorized", "not an Actions code")
  end,
}
