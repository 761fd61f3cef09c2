return {
  onExecuteCredentialsExchange = function(event, api)
    api.accessToken.setCustomClaim("https://acme.example/order",
      event.accessToken.customClaims["https://acme.example/order"] .. ",action2")
    api.transaction.removeTargetScope("write:a")
    api.transaction.addTargetScope("read:a")
    api.transaction.addTargetScope("read:a")
  end,
}
