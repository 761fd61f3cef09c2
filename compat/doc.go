// Package compat gives rulesgate's Lua engine the shapes Auth0 users know,
// run in Auth0's order on one Lua state: Rules (function(user, context,
// callback)), client-credentials-exchange Hooks (function(client, scope,
// audience, context, cb)) and credentials-exchange Actions (a table with
// onExecuteCredentialsExchange(event, api), with api.cache). After them it
// applies the guards Auth0 applies: final scopes cut to the grant,
// restricted claims and reserved namespaces refused, custom claims bounded
// in size. Shadow runs compare a second action set with the live outcome.
package compat
