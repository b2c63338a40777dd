// The suite's Temporal server by hand, with its Web UI: `npm run temporal:dev` fetches the same
// CLI the tests use (on first use) and runs `temporal server start-dev` with the arguments given,
// e.g. `npm run temporal:dev -- --port 7244`. Then run tests against it with
// TEMPORAL_ADDRESS=localhost:7233.
import { spawn } from 'node:child_process';
import { ensureTemporalCli } from './cli.ts';

const cli = await ensureTemporalCli({ log: (line) => console.error(line) });
const child = spawn(cli, ['server', 'start-dev', ...process.argv.slice(2)], { stdio: 'inherit' });
// Stopping this process stops the server (Ctrl-C reaches both; a kill only this one).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
