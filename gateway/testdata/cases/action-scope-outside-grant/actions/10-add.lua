-- Auth0 does: target scopes end intersected with the grant; admin is dropped.
return {
  onExecuteCredentialsExchange = function(event, api)
    api.transaction.addTargetScope("admin")
    api.transaction.addTargetScope("write:a")
  end,
}
