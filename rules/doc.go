// Package rules is rulesgate's Lua engine: it compiles each extension once,
// keeps a pool of sandboxed Lua states, and runs extensions on a state under a
// deadline. It knows nothing of Auth0; the shapes of Rules, Hooks and Actions
// live in package compat on top of it.
//
// A run gets a fresh global environment, so nothing one request writes to a
// global is seen by another. What outlives a run lives with its state: the
// tables a shape installs with State.SetGlobal, and what a program's file
// level sets up when State.Function first loads it.
package rules
