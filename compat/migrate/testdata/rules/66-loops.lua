-- Every kind of loop, each leaving a claim.
return function(user, context, callback)
  local scopes = context.accessToken.scope

  local numbered = {}
  for i = 1, #scopes do
    numbered[#numbered + 1] = i .. ":" .. scopes[i]
  end

  local keys = {}
  for k, _ in pairs(context.clientMetadata) do
    table.insert(keys, k)
  end
  table.sort(keys)

  local reversed = {}
  for i = #scopes, 1, -1 do
    table.insert(reversed, scopes[i])
  end

  local i = 1
  local long = nil
  while i <= #scopes and not long do
    if #scopes[i] > 10 then
      long = scopes[i]
    end
    i = i + 1
  end

  local n, steps = 1, 0
  repeat
    n = n * 2
    steps = steps + 1
  until n >= 100

  local evens = 0
  for j = 0, 10, 2 do
    evens = evens + j
  end

  context.accessToken["https://example.com/numbered"] = table.concat(numbered, ",")
  context.accessToken["https://example.com/keys"] = keys
  context.accessToken["https://example.com/reversed"] = reversed
  context.accessToken["https://example.com/long"] = long
  context.accessToken["https://example.com/steps"] = steps
  context.accessToken["https://example.com/evens"] = evens
  callback(nil, user, context)
end
