-- Write scopes only inside the maintenance window. The sandbox has no
-- clock: the caller sends the hour in the body (body.now, in hours).
return function(user, context, callback)
  local now = tonumber(context.request.body.now)
  if now == nil then
    return callback(UnauthorizedError("now is required"))
  end

  local hour = math.floor(now % 24)
  local from = tonumber(configuration.WINDOW_START) or 0
  local to = tonumber(configuration.WINDOW_END) or 24
  local inside = hour >= from and hour < to
  if not inside then
    local kept = {}
    for _, s in ipairs(context.accessToken.scope) do
      if string.sub(s, 1, 6) ~= "write:" then
        table.insert(kept, s)
      end
    end
    context.accessToken.scope = kept
  end
  context.accessToken["https://example.com/hour"] = hour
  callback(nil, user, context)
end
