// The suite's Temporal server by hand, with its Web UI: `npm run temporal:dev` fetches the same
// CLI the tests use (on first use) and runs `temporal server start-dev` with the arguments given,
// e.g. `npm run temporal:dev -- --port 7244`. Then run tests against it with
// TEMPORAL_ADDRESS=localhost:7233.
import { spawn } from 'node:child_process';
import { ensureTemporalCli } from './cli.ts';

const cli = await ensureTemporalCli({ log: (line) => console.error(line) });
const child = spawn(cli, ['server', 'start-dev', ...process.argv.slice(2)], { stdio: 'inherit' });
// Ctrl-C reaches the server too (same terminal); it shuts down and so do we.
process.on('SIGINT', () => undefined);
child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
