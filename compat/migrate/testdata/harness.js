// Runs a generated Credentials Exchange Action on test cases, calling it
// as Auth0 does, and prints what each case left: the target scopes and
// custom claims, the denial, or the error the action threw.
//
// Input on stdin: {"code": "/abs/path/code.js", "events": [event, ...]}.
// Output on stdout: [{"scopes", "claims"} | {"deny": {code, reason}} | {"error"}].
'use strict';

const fs = require('fs');

const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const action = require(input.code);

// Auth0 does: deny takes one of these codes.
const denyCodes = new Set(['invalid_scope', 'invalid_request', 'server_error']);

function scopeString(s) {
  if (typeof s !== 'string') throw new TypeError(`scope ${JSON.stringify(s)} is not a string`);
  return s;
}

async function run(event) {
  let target = [...event.transaction.target_scopes];
  const claims = {};
  let deny = null;
  const cache = new Map();
  const sync = () => { event.transaction.target_scopes = [...target]; };
  const api = {
    // Auth0 does: each target-scope method updates
    // event.transaction.target_scopes at once.
    transaction: {
      addTargetScope(s) { target.push(scopeString(s)); sync(); },
      removeTargetScope(s) { target = target.filter((t) => t !== scopeString(s)); sync(); },
      setTargetScopes(list) {
        if (!Array.isArray(list)) throw new TypeError('setTargetScopes takes an array');
        target = list.map(scopeString);
        sync();
      },
      clearTargetScopes() { target = []; sync(); },
    },
    accessToken: {
      setCustomClaim(key, value) { claims[key] = value; },
    },
    access: {
      deny(code, reason) {
        if (!denyCodes.has(code)) throw new TypeError(`deny code ${code}`);
        if (deny === null) deny = { code, reason };
      },
    },
    cache: {
      get(key) { return cache.has(key) ? { value: cache.get(key) } : undefined; },
      set(key, value) { cache.set(key, value); },
      delete(key) { cache.delete(key); },
    },
  };

  try {
    await action.onExecuteCredentialsExchange(event, api);
  } catch (err) {
    return { error: String(err && err.message ? err.message : err) };
  }
  if (deny !== null) {
    return { deny };
  }
  // Claims are read when the token is built: after the action returned.
  return { scopes: target, claims: JSON.parse(JSON.stringify(claims)) };
}

(async () => {
  const results = [];
  for (const event of input.events) {
    results.push(await run(event));
  }
  process.stdout.write(JSON.stringify(results));
})();
