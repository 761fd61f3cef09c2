-- Refuse blocked addresses, and clients on the configured deny list.
local blocked_ips = { "10.9.9.9", "192.0.2.1" }

return function(user, context, callback)
  for _, ip in ipairs(blocked_ips) do
    if context.request.ip == ip then
      return callback(UnauthorizedError("requests from " .. ip .. " are refused"))
    end
  end

  local denied = configuration.DENIED_CLIENTS
  if denied then
    for id in string.gmatch(denied, "[^,%s]+") do
      if id == context.clientID then
        return callback(UnauthorizedError(string.format("client %s is on the deny list", id)))
      end
    end
  end
  callback(nil, user, context)
end
