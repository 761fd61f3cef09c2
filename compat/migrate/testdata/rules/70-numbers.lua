-- A rate limit and burst from client metadata, which holds strings.
return function(user, context, callback)
  local meta = context.clientMetadata
  local limit = tonumber(meta.rate_limit)
  if limit == nil then
    limit = 60
  end
  limit = math.max(10, math.min(limit, 1000))

  local burst = meta.burst and meta.burst * 2 or limit / 8
  local shard = (limit % 7) + 1

  context.accessToken["https://example.com/limit"] = limit
  context.accessToken["https://example.com/burst"] = burst
  context.accessToken["https://example.com/shard"] = shard
  context.accessToken["https://example.com/even"] = limit % 2 == 0
  context.accessToken["https://example.com/neg"] = -limit % 7
  callback(nil, user, context)
end
