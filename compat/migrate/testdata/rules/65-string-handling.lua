-- Labels built from the client's name and user agent.
return function(user, context, callback)
  local name = context.clientName or ""
  local slug = string.lower(name):gsub(" ", "-")
  local initial = string.upper(string.sub(name, 1, 1))
  local agent = context.request.userAgent or ""

  local version = nil
  local slash = agent:find("/", 1, true)
  if slash then
    version = agent:sub(slash + 1)
  end

  context.accessToken["https://example.com/slug"] = slug
  context.accessToken["https://example.com/initial"] = initial
  context.accessToken["https://example.com/label"] =
    string.format("%s (%d scopes)", name, #context.accessToken.scope)
  context.accessToken["https://example.com/bar"] = string.rep("=", #name)
  context.accessToken["https://example.com/tail"] = name:sub(-3)
  if version then
    context.accessToken["https://example.com/version"] = version
  end
  if agent:find("^curl") then
    context.accessToken["https://example.com/tool"] = "curl"
  end
  if string.len(name) > 10 then
    context.accessToken["https://example.com/long"] = true
  end
  callback(nil, user, context)
end
