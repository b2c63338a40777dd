// `tokenwarden dev-provider`: the testkit's test OAuth provider on loopback, to try Tokenwarden
// without registering an app anywhere. It prints the `providers put` line for itself, writes a
// fresh token pair to two files and prints the `connections import` line for them.
//
// The provider is test tooling: @tokenwarden/testkit is an optional peer dependency of the
// server, loaded here and nowhere else, on demand, so a production install never needs it.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isLoopback } from '@tokenwarden/core';
import { defineCommand, valued, type Args } from './args.ts';
import { CliError, UsageError } from './errors.ts';
import { note } from './output.ts';

const TESTKIT = '@tokenwarden/testkit';
const DEFAULT_PORT = '8081';

const HELP = `Usage: tokenwarden dev-provider [--port ${DEFAULT_PORT}] [--host 127.0.0.1] [options]

Runs a test OAuth provider (from ${TESTKIT}) on this machine until Ctrl-C, to try
Tokenwarden with: it approves every authorization request at once and keeps its tokens in
memory only. It prints the 'providers put' line that configures it, writes a fresh token
pair to at.txt and rt.txt (mode 0600, replacing earlier ones) and prints the
'connections import' line for them. Its client id and secret are fixed test values.

Options:
  --port <n>                   port to listen on (default ${DEFAULT_PORT}; 0 picks a free one)
  --host <addr>                a loopback address: 127.0.0.1 (default), ::1 or localhost
  --name <name>                provider name in the printed lines (default dev)
  --out <dir>                  where at.txt and rt.txt go (default: the current directory)
  --access-ttl <seconds>       access token lifetime (default 3600)
  --rotation <yes|no>          each refresh issues a new refresh token and spends the old
                               one (default yes)
  --reuse-detection <yes|no>   a spent refresh token presented again revokes its whole
                               family (default yes)
  --reuse-grace-seconds <n>    a spent refresh token is still accepted this long (default 0)

Needs the package ${TESTKIT} next to @tokenwarden/server (npm install ${TESTKIT}).`;

/** The part of the testkit this command uses. */
type Testkit = typeof import('@tokenwarden/testkit');

export const devProviderCommand = defineCommand({
  name: 'dev-provider',
  summary: 'run a test OAuth provider on loopback to try Tokenwarden with',
  help: HELP,
  options: {
    ...valued(
      'port',
      'host',
      'name',
      'out',
      'access-ttl',
      'rotation',
      'reuse-detection',
      'reuse-grace-seconds',
    ),
  },
  async run(args) {
    const port = args.int('port', { min: 0, max: 65535 }, DEFAULT_PORT)!;
    const host = loopbackHost(args.string('host') ?? '127.0.0.1', args.command);
    const name = args.string('name') ?? 'dev';
    const rotation = yesNo(args, 'rotation', true);
    const reuseDetection = yesNo(args, 'reuse-detection', true);
    const graceSeconds = args.int('reuse-grace-seconds', { min: 0, max: 86_400 }) ?? 0;
    const accessTtl = args.int('access-ttl', { min: 1, max: 30 * 86_400 }) ?? 3600;
    const out = args.string('out') ?? '.';

    const { TestProvider } = await loadTestkit();
    const provider = await TestProvider.start({
      port,
      host,
      rotation,
      reuseDetection,
      reuseGraceMs: graceSeconds * 1000,
      accessTokenTtlSeconds: accessTtl,
    }).catch((error: unknown) => {
      if ((error as { code?: string }).code === 'EADDRINUSE') {
        throw new CliError(`port ${port} on ${host} is in use: pick another with --port`);
      }
      throw error;
    });
    const stopped = untilSignal();
    try {
      const grant = provider.issueGrant();
      const files = { access: join(out, 'at.txt'), refresh: join(out, 'rt.txt') };
      writeSecret(files.access, grant.access_token);
      writeSecret(files.refresh, grant.refresh_token);

      const grace = graceSeconds > 0 ? ` --reuse-grace-seconds ${graceSeconds}` : '';
      const put = [
        `TOKENWARDEN_CLIENT_SECRET=${provider.clientSecret} npx tokenwarden providers put ${name}`,
        `--token-url ${provider.tokenUrl} --authorize-url ${provider.authorizeUrl}`,
        `--client-id ${provider.clientId} --rotation ${rotation ? 'yes' : 'no'}` +
          ` --reuse-detection ${reuseDetection ? 'yes' : 'no'}${grace}`,
      ];
      const importLine = [
        `npx tokenwarden connections import --provider ${name} --owner me`,
        `--access-token-file ${files.access} --refresh-token-file ${files.refresh}` +
          ` --expires-in ${grant.expires_in}`,
      ];
      process.stdout.write(
        `${[
          `Test OAuth provider on ${provider.url} (client ${provider.clientId}).`,
          '',
          'Configure it (with TOKENWARDEN_ADMIN_KEY set):',
          continued(put),
          '',
          `A fresh token pair is in ${files.access} and ${files.refresh}; import it:`,
          continued(importLine),
          '',
        ].join('\n')}\n`,
      );
      note('Ctrl-C stops it (its tokens live in memory only).');
      await stopped;
    } finally {
      await provider.close();
    }
    note('Stopped.');
  },
});

/**
 * The testkit, or a CliError naming the package when it is not installed. Only the testkit
 * itself missing is that case: a dependency of it missing is a broken install, left as it is.
 */
export async function loadTestkit(): Promise<Testkit> {
  try {
    return await import('@tokenwarden/testkit');
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === 'ERR_MODULE_NOT_FOUND' && message?.includes(`'${TESTKIT}'`)) {
      throw new CliError(
        `dev-provider needs the package ${TESTKIT} (an optional peer dependency of @tokenwarden/server): npm install ${TESTKIT}`,
      );
    }
    throw error;
  }
}

/** The provider approves every authorization request: it must not be reachable from elsewhere. */
function loopbackHost(host: string, command: string): string {
  if (!isLoopback(host)) {
    throw new UsageError(
      `--host must be a loopback address (127.0.0.1, ::1 or localhost), got '${host}': the test provider approves every request`,
      command,
    );
  }
  return host;
}

function yesNo(args: Args, name: string, fallback: boolean): boolean {
  const value = args.string(name);
  if (value === undefined) return fallback;
  if (value === 'yes' || value === 'no') return value === 'yes';
  throw new UsageError(`--${name} must be yes or no, got '${value}'`, args.command);
}

/** The tokens are real for the provider that issued them, so only their owner may read them. */
function writeSecret(path: string, value: string): void {
  try {
    writeFileSync(path, `${value}\n`, { mode: 0o600 });
    chmodSync(path, 0o600); // mode applies only to a file created now, not to an earlier one
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'error';
    throw new CliError(`cannot write ${path} (${code}); choose another directory with --out`);
  }
}

/** A shell command over several lines, each but the last ending in a backslash. */
function continued(parts: readonly string[]): string {
  return parts.map((part, i) => (i === 0 ? `  ${part}` : `    ${part}`)).join(' \\\n');
}

/**
 * Resolves at the first SIGINT or SIGTERM. Closing takes no time worth waiting for, so the
 * listeners are `once`: a second signal meets Node's default and ends the process at once.
 */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
