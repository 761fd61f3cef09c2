// Package rules is rulesgate's Lua engine: it compiles each extension once,
// keeps a pool of sandboxed Lua states, and runs extensions on a state under a
// deadline. It knows nothing of Auth0; the shapes of Rules, Hooks and Actions
// live in package compat on top of it.
//
// A run gets a fresh global environment, so nothing one request writes to a
// global is seen by another. The only state that outlives a run is the table
// named by Limits.PersistentGlobal, which a shape may install per state.
package rules
