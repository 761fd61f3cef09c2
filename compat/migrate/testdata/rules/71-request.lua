-- Claims from the request: address, host, query and body parameters.
return function(user, context, callback)
  local ip = context.request.ip
  local internal = string.sub(ip, 1, 3) == "10." or ip == "127.0.0.1"
  context.accessToken["https://example.com/internal"] = internal
  context.accessToken["https://example.com/host"] = string.lower(context.request.hostname)

  local debug = context.request.query.debug
  if debug == "1" and internal then
    context.accessToken["https://example.com/debug"] = true
  end

  local org = context.request.body.organization
  if org ~= nil and org ~= "" then
    context.accessToken["https://example.com/org"] = org
  end
  if type(context.request.body.extra) == "table" then
    context.accessToken["https://example.com/extra"] = "table"
  elseif type(context.request.body.extra) == "number" then
    context.accessToken["https://example.com/extra"] = "number"
  end
  callback(nil, user, context)
end
