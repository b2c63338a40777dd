// `tokenwarden <command>`: dispatches to one file per command group. Expected failures print one
// `error: ...` line and exit non-zero; TOKENWARDEN_DEBUG=1 adds the stack trace.
import type { Command } from './args.ts';
import { CliError, oneLine, UsageError } from './errors.ts';

// Loaded on demand: the API commands start without loading core's database drivers. Each entry
// is a command's name, its summary, and the module that exports it as `<camelCase name>Command`.
const COMMANDS = [
  command('serve', 'run the HTTP API', () => import('./serve.ts')),
  command('providers', 'configure OAuth providers', () => import('./providers.ts')),
  command('presets', 'list the provider presets (no server needed)', () => import('./presets.ts')),
  command('clients', 'manage service clients and their API keys', () => import('./clients.ts')),
  command(
    'connections',
    'list, inspect, import, re-authorize and delete connections',
    () => import('./connections.ts'),
  ),
  command('token', 'print a valid access token for a connection', () => import('./token.ts')),
  command('audit', 'show the audit log', () => import('./audit.ts')),
  command('webhooks', 'manage webhook endpoints and deliveries', () => import('./webhooks.ts')),
  command(
    'dev-provider',
    'run a test OAuth provider on loopback to try Tokenwarden with',
    () => import('./dev-provider.ts'),
  ),
  command('admin-key', 'rotate the admin key', () => import('./admin-key.ts')),
  command(
    'keys',
    'add an encryption key; re-encrypt stored tokens under it',
    () => import('./keys.ts'),
  ),
];

function command(
  name: string,
  summary: string,
  module: () => Promise<object>,
): { name: string; summary: string; load: () => Promise<Command> } {
  const exported = `${name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())}Command`;
  return {
    name,
    summary,
    async load() {
      const loaded = (await module()) as Record<string, Command | undefined>;
      if (!loaded[exported]) throw new Error(`the module of '${name}' exports no ${exported}`);
      return loaded[exported];
    },
  };
}

const HELP = `Usage: tokenwarden <command> [options]

Tokenwarden: one valid OAuth2 access token for any worker, refreshed exactly once.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`).join('\n')}

Run 'tokenwarden <command> --help' for a command's options; --version prints the version.`;

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write(`${(topic ? (await topic.load()).help : HELP).trimEnd()}\n`);
    if (name === undefined) process.exitCode = 2;
    return;
  }
  if (name === '--version' || name === '-V') {
    const { readFileSync } = await import('node:fs');
    const manifest = new URL('../../package.json', import.meta.url);
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
    process.stdout.write(`tokenwarden ${version}\n`);
    return;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    const what = name.startsWith('-') ? `unknown option ${name}` : `unknown command '${name}'`;
    throw new UsageError(`${what} (see 'tokenwarden --help')`);
  }
  await (await command.load()).run(rest);
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  process.exitCode = await report(error);
}

async function report(error: unknown): Promise<number> {
  const debug = Boolean(process.env.TOKENWARDEN_DEBUG);
  if (error instanceof CliError) {
    process.stderr.write(`error: ${oneLine(error.message)}\n`);
    return error.exitCode;
  }
  // Core's typed errors are expected (bad key ring, database down) and their messages are safe.
  const { TokenwardenError } = await import('@tokenwarden/core');
  if (error instanceof TokenwardenError) {
    // The cause's message may quote SQL or a connection string; its code (ECONNREFUSED) may not.
    const cause = (error.cause as { code?: unknown } | undefined)?.code;
    const suffix = typeof cause === 'string' ? ` (${cause})` : '';
    process.stderr.write(`error: ${error.code}: ${oneLine(error.message)}${suffix}\n`);
    if (debug && error.stack) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
  // A bug, or a failure nobody anticipated: still one line, the stack on request.
  const message = oneLine(error instanceof Error ? error.message : String(error));
  const hint = debug ? '' : ' (set TOKENWARDEN_DEBUG=1 for the stack trace)';
  process.stderr.write(`error: unexpected failure: ${message}${hint}\n`);
  if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return 1;
}
