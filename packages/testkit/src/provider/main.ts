// Child-process entry: runs a TestProvider until SIGTERM/SIGINT (or, with --watch-stdin, until
// the parent goes away) and announces where it listens with one JSON line on stdout.
//   node --conditions=tokenwarden-source --import tsx main.ts --port 0 --rotation false
import { parseProviderArgs, type ProviderArgs } from './args.ts';
import { TestProvider } from './provider.ts';

let args: ProviderArgs;
try {
  args = parseProviderArgs(process.argv.slice(2));
} catch (error) {
  process.stderr.write(
    `test provider: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(2);
}

const { watchStdin, ...options } = args;
const provider = await TestProvider.start(options);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  provider.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (watchStdin) {
  // A parent that crashes never sends SIGTERM, but its end of the stdin pipe closes; without
  // this an orphaned provider would keep its port and the test run's process tree alive.
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

// The client secret is a fixed test value the parent chose or defaulted; it is not a real secret.
const { url, tokenUrl, clientId, clientSecret } = provider;
process.stdout.write(`${JSON.stringify({ url, tokenUrl, clientId, clientSecret })}\n`);
