// Package migrate turns rules written for rulesgate in the shape Auth0
// Rules had (a Lua file returning function(user, context, callback))
// into Credentials Exchange Actions: in JavaScript for Auth0, laid out
// as the Auth0 Deploy CLI reads them, and in Lua for rulesgate serve
// --actions.
//
// The translation works on gopher-lua's syntax tree and maps the rule
// the way Auth0's guide "Migrate from Rules to Actions" does:
// context.clientID becomes event.client.client_id, configuration.X
// becomes event.secrets.X, callback(nil, user, context) a return,
// UnauthorizedError a call to api.access.deny, and edits to
// context.accessToken calls to api.transaction and api.accessToken. What
// it cannot translate faithfully it does not guess at: the generated
// code carries a TODO(migrate) comment there and the translation lists
// it as an Issue.
package migrate
