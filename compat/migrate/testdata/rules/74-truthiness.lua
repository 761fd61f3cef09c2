-- Lua's truth on request values: 0 and "" are true, only nil and false
-- are false.
return function(user, context, callback)
  local body = context.request.body
  local flag = body.flag
  local seen = {}
  if flag then
    seen[#seen + 1] = "flag"
  end
  if not body.off then
    seen[#seen + 1] = "on"
  end
  local count = body.count or 1
  local label = body.label and ("label:" .. tostring(body.label)) or "none"
  context.accessToken["https://example.com/seen"] = table.concat(seen, ",")
  context.accessToken["https://example.com/count"] = count
  context.accessToken["https://example.com/label"] = label
  context.accessToken["https://example.com/type"] = type(flag)
  callback(nil, user, context)
end
