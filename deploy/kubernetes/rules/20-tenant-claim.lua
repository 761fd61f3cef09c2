-- Add the client's tenant, from its metadata, as a namespaced custom claim.
return function(user, context, callback)
  local tenant = context.clientMetadata.tenant
  if tenant ~= nil then
    local namespace = configuration.CLAIM_NAMESPACE or "https://rulesgate.dev/"
    context.accessToken[namespace .. "tenant"] = tenant
  end
  callback(nil, user, context)
end
