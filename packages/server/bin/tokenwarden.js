#!/usr/bin/env node
// The `tokenwarden` command: the CLI compiled to dist/, run by plain node. `npm ci` builds it
// in this repository (the root's prepare step), `npm pack` before packing (prepack).
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const cli = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(cli)) {
  // Without this a source checkout that was never built fails with a bare ERR_MODULE_NOT_FOUND.
  process.stderr.write(
    'error: tokenwarden is not built: run `npm run build` at the repository root\n',
  );
  process.exit(1);
}
await import(cli.href);
