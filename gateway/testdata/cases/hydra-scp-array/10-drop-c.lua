-- Hydra grants what was asked; this rule still removes "c".
return function(user, context, callback)
  local kept = {}
  for _, s in ipairs(context.accessToken.scope) do
    if s ~= "c" then kept[#kept + 1] = s end
  end
  context.accessToken.scope = kept
  context.accessToken["https://example.com/env"] = "prod"
  callback(nil, user, context)
end
