-- A hook sees nothing of the rule's claims; it adds its own.
return function(client, scope, audience, context, cb)
  cb(nil, { ["https://acme.example/hook"] = "hook" })
end
