#!/usr/bin/env node
// The `tokenwarden` command. The package ships TypeScript sources, so this shim loads them in
// this same process: a resolve hook adds the `tokenwarden-source` export condition (what
// `node --conditions=tokenwarden-source` would do) and tsx compiles. Staying in one process
// keeps signals, stdio and the exit code the command's own, with nothing to forward.
import { register } from 'node:module';
import { URL } from 'node:url';
import { register as registerTsx } from 'tsx/esm/api';

const CONDITION = 'tokenwarden-source';
const hook = `export async function resolve(specifier, context, next) {
  const conditions = context.conditions ?? [];
  return next(specifier, conditions.includes(${JSON.stringify(CONDITION)})
    ? context
    : { ...context, conditions: [${JSON.stringify(CONDITION)}, ...conditions] });
}`;
// Hooks registered later run first: tsx resolves .ts paths, then hands bare specifiers to ours.
register(`data:text/javascript,${encodeURIComponent(hook)}`);
registerTsx();

await import(new URL('../src/cli/main.ts', import.meta.url).href);
