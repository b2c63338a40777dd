// `tokenwarden serve`: the HTTP API on the embedded SQLite default or a shared Postgres.
import type { AddressInfo } from 'node:net';
import type { KyselyStore } from '@tokenwarden/core';
import { buildServer, generateApiKey, hashApiKey } from '../index.ts';
import { parseCommand, parseInteger, type Command } from './args.ts';
import { openDatabase, DB_HELP } from './database.ts';
import { CliError, oneLine } from './errors.ts';
import { note } from './output.ts';

const HELP = `Usage: tokenwarden serve [--db <path|url>] [--port 8080] [--host 127.0.0.1] [--public-url <url>]

Runs the HTTP API. With no --db it uses ./tokenwarden.sqlite and a key file
./tokenwarden.keys generated on first start (mode 0600; back it up). A postgres:// URL
needs TOKENWARDEN_KEYS or TOKENWARDEN_KEY_FILE, the same on every replica.

The admin key comes from TOKENWARDEN_ADMIN_KEY. Without it, the first start on SQLite
generates one, prints it once and stores only its hash; Postgres refuses to start.

Options:
${DB_HELP}
  --port <n>       port to listen on (env TOKENWARDEN_PORT, default 8080; 0 picks a free one)
  --host <addr>    address to listen on (env TOKENWARDEN_HOST, default 127.0.0.1)
  --public-url <url>
                   this server as browsers reach it, e.g. https://tokenwarden.example (env
                   TOKENWARDEN_PUBLIC_URL). Turns on the connect flow; register
                   <url>/v1/connect/callback as the redirect URI at each provider.

Environment: TOKENWARDEN_LOG_LEVEL sets the level of the JSON log on stdout: fatal, error,
warn, info (default: a line per request), debug, trace or silent.
SIGINT or SIGTERM stop accepting requests, finish those in flight, then exit 0.`;

const ADMIN_KEY_SETTING = 'admin_key_hash';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the HTTP API',
  help: HELP,
  async run(argv) {
    const args = parseCommand(argv, this, {
      db: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'public-url': { type: 'string' },
    });
    if (!args) return;
    const env = process.env;
    const portText = args.string('port') ?? env.TOKENWARDEN_PORT ?? '8080';
    const label =
      args.string('port') === undefined && env.TOKENWARDEN_PORT ? 'TOKENWARDEN_PORT' : '--port';
    const port = parseInteger(portText, label, { min: 0, max: 65535 }, 'serve');
    const host = args.string('host') || env.TOKENWARDEN_HOST || '127.0.0.1';
    const publicUrl = args.string('public-url') || env.TOKENWARDEN_PUBLIC_URL;
    const logLevel = env.TOKENWARDEN_LOG_LEVEL || 'info';
    if (!LOG_LEVELS.includes(logLevel)) {
      throw new CliError(`TOKENWARDEN_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
    }
    // Listening for signals from the start: a SIGTERM while starting up is a stop request too.
    const stopRequested = untilSignal();

    const configuredHash = configuredAdminKeyHash();
    const database = await openDatabase({ db: args.string('db'), create: true, warn });
    const { store } = database;
    let app: Awaited<ReturnType<typeof buildServer>> | undefined;
    try {
      const adminKeyHash = configuredHash ?? (await storedAdminKeyHash(store, database.kind));
      app = await buildServer({
        store,
        keyRing: database.keyRing,
        adminKeyHash,
        logger: { level: logLevel },
        connect: publicUrl ? { callbackUrl: connectCallbackUrl(publicUrl) } : undefined,
      });
      await app.listen({ port, host });
    } catch (error) {
      await app?.close().catch(() => {});
      await store.close().catch(() => {});
      throw listenError(error, host, port);
    }
    const address = app.server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    note(
      `Tokenwarden listening on http://${shown}:${address.port} ` +
        `(${database.kind} ${database.location}, keys from ${database.keySource})`,
    );
    await stopRequested;
    note('Shutting down: finishing requests in flight.');
    await app.close();
    await store.close();
    note('Stopped.');
  },
};

/** TOKENWARDEN_ADMIN_KEY's hash; checked before the database is opened. */
function configuredAdminKeyHash(): string | undefined {
  const configured = process.env.TOKENWARDEN_ADMIN_KEY;
  if (!configured) return undefined;
  // What an Authorization header can carry (the server's Bearer syntax); short keys are guessable.
  if (!/^[\x21-\x7e]{16,512}$/.test(configured)) {
    throw new CliError(
      'TOKENWARDEN_ADMIN_KEY must be 16 to 512 printable ASCII characters without spaces',
    );
  }
  return hashApiKey(configured);
}

/**
 * Without TOKENWARDEN_ADMIN_KEY: the hash stored at first start. Only the
 * embedded default generates a key, printed once; a shared database must be given one, or the
 * first replica to start would hold a key nobody else knows.
 */
async function storedAdminKeyHash(
  store: KyselyStore,
  kind: 'sqlite' | 'postgres',
): Promise<string> {
  const stored = await store.service.getSetting(ADMIN_KEY_SETTING);
  if (stored !== undefined) return stored;
  if (kind === 'postgres') {
    throw new CliError(
      'no admin key: set TOKENWARDEN_ADMIN_KEY (a shared Postgres database never gets a generated admin key; give every replica the same one)',
    );
  }
  const key = generateApiKey();
  if (await store.service.setSettingIfAbsent(ADMIN_KEY_SETTING, hashApiKey(key))) {
    note(`Generated the admin key (shown only this once; only its hash is stored): ${key}`);
    note('Keep it secret; set it as TOKENWARDEN_ADMIN_KEY for the admin commands.');
    return hashApiKey(key);
  }
  // Another process starting on the same file stored its key first: that one is the key.
  const winner = await store.service.getSetting(ADMIN_KEY_SETTING);
  if (winner === undefined) throw new CliError('the stored admin key hash vanished while starting');
  return winner;
}

/** Resolves at the first SIGINT or SIGTERM; a second one exits at once. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        note(`${signal} again: exiting without waiting.`);
        process.exit(130);
      }
      stopping = true;
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** The callback every provider redirects to: the public URL with the route's path appended. */
export function connectCallbackUrl(publicUrl: string): string {
  if (!URL.canParse(publicUrl)) throw new CliError(`--public-url is not a URL: ${publicUrl}`);
  return new URL('v1/connect/callback', publicUrl.endsWith('/') ? publicUrl : `${publicUrl}/`).href;
}

function listenError(error: unknown, host: string, port: number): unknown {
  const code = (error as { code?: string }).code;
  if (code === 'EADDRINUSE')
    return new CliError(`port ${port} on ${host} is already in use; pick another with --port`);
  if (code === 'EACCES')
    return new CliError(`not allowed to listen on ${host}:${port} (EACCES); use a port above 1023`);
  if (code === 'EADDRNOTAVAIL')
    return new CliError(`${host} is not an address of this machine (--host)`);
  return error;
}

function warn(message: string): void {
  note(`warning: ${oneLine(message)}`);
}
