-- A claim that is an object holding an array.
return function(user, context, callback)
  local meta = context.clientMetadata
  local groups = {}
  for g in string.gmatch(meta.groups or "", "[%w_-]+") do
    groups[#groups + 1] = string.lower(g)
  end

  local info = { name = context.clientName, groups = groups, count = #groups }
  if #groups > 0 then
    info.primary = groups[1]
  end
  context.accessToken["https://example.com/info"] = info
  context.accessToken["https://example.com/admin"] = meta.admin == "yes"
  callback(nil, user, context)
end
