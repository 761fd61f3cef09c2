// Package compat gives rulesgate's Lua engine the shapes Auth0 users know:
// Rules (function(user, context, callback)) today, and the guards Auth0
// applies after them: final scopes cut to the grant, restricted claims and
// reserved namespaces refused, custom claims bounded in size.
package compat
