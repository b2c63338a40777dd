// `tokenwarden serve`: the HTTP API on the embedded SQLite default or a shared Postgres.
import type { AddressInfo } from 'node:net';
import type { KyselyStore } from '@tokenwarden/core';
import {
  redirectOrigins as checkRedirectOrigins,
  shutdownReport,
  type ShutdownReport,
} from '../app.ts';
import { buildServer, generateApiKey, hashApiKey } from '../index.ts';
import { parseCommand, parseInteger, type Args, type Command } from './args.ts';
import { openDatabase, DB_HELP } from './database.ts';
import { CliError, oneLine } from './errors.ts';
import { note } from './output.ts';
import { redactUrl } from './redact-url.ts';

const HELP = `Usage: tokenwarden serve [--db <path|url>] [--port 8080] [--host 127.0.0.1] [--public-url <url>]
                         [--redirect-origins <origins>] [--shutdown-grace <s>] [--log-level <level>]
                         [--allow-private-webhooks]

Runs the HTTP API. With no --db it uses ./tokenwarden.sqlite and a key file
./tokenwarden.keys generated on first start (mode 0600; back it up). A postgres:// URL
needs TOKENWARDEN_KEYS or TOKENWARDEN_KEY_FILE, the same on every replica.

The admin key comes from TOKENWARDEN_ADMIN_KEY. Without it, the first start on SQLite
generates one, prints it once and stores only its hash; Postgres refuses to start.

Every option has an environment variable; a flag wins over the variable, the variable
over the default.

Options:
${DB_HELP}
  --port <n>       port to listen on (env TOKENWARDEN_PORT, default 8080; 0 picks a free one)
  --host <addr>    address to listen on (env TOKENWARDEN_HOST, default 127.0.0.1)
  --public-url <url>
                   this server as browsers reach it, e.g. https://tokenwarden.example (env
                   TOKENWARDEN_PUBLIC_URL). The connect flow's callback is
                   <url>/v1/connect/callback: register it at each provider. Default on a
                   loopback --host: http://127.0.0.1:<port>; elsewhere none (connect flow off).
  --redirect-origins <origins>
                   comma-separated origins (https://app.example) a connect session may send
                   its user back to (env TOKENWARDEN_REDIRECT_ORIGINS; default any https
                   origin, or http on loopback)
  --shutdown-grace <s>
                   seconds a stop lets requests in flight finish (env
                   TOKENWARDEN_SHUTDOWN_GRACE, default 10, at most 3600)
  --log-level <level>
                   the JSON log on stdout: fatal, error, warn, info (default: a line per
                   request), debug, trace or silent (env TOKENWARDEN_LOG_LEVEL)
  --allow-private-webhooks
                   let webhook endpoints be on private, loopback or link-local addresses and
                   plain http: for development, and receivers inside your own network (env
                   TOKENWARDEN_ALLOW_PRIVATE_WEBHOOKS=true; default off: https to public
                   addresses only, checked on the address resolved at each delivery)

At start it prints one line: the address, TLS (off: put a TLS proxy in front), the store
(a Postgres URL without its password), where the keys come from and the public URL.

SIGINT or SIGTERM stop accepting requests and the scheduler's claims, let requests in
flight finish for up to the grace period, then abort their provider requests (their
leases handed back, so another replica takes over at once) and answer what is left 503,
retryable; the audit is written and the process exits 0 (1 if audit events could not be
written, which it says). A second signal exits at once.`;

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
      'redirect-origins': { type: 'string' },
      'shutdown-grace': { type: 'string' },
      'log-level': { type: 'string' },
      'allow-private-webhooks': { type: 'boolean' },
    });
    if (!args) return;
    const setting = (flag: string, env: string) => configured(args, flag, env);
    const port = setting('port', 'TOKENWARDEN_PORT').int(8080, 65535);
    const host = setting('host', 'TOKENWARDEN_HOST').value ?? '127.0.0.1';
    const publicUrl = setting('public-url', 'TOKENWARDEN_PUBLIC_URL').value;
    const { value: origins, label: originsLabel } = setting(
      'redirect-origins',
      'TOKENWARDEN_REDIRECT_ORIGINS',
    );
    const graceSeconds = setting('shutdown-grace', 'TOKENWARDEN_SHUTDOWN_GRACE').int(10, 3600);
    const logLevelSetting = setting('log-level', 'TOKENWARDEN_LOG_LEVEL');
    const logLevel = logLevelSetting.value ?? 'info';
    if (!LOG_LEVELS.includes(logLevel)) {
      throw new CliError(`${logLevelSetting.label} must be one of ${LOG_LEVELS.join(', ')}`);
    }
    const allowPrivateWebhooks = booleanSetting(
      args.flag('allow-private-webhooks'),
      'TOKENWARDEN_ALLOW_PRIVATE_WEBHOOKS',
    );
    const redirectOrigins = origins?.split(',').map((origin) => origin.trim());
    try {
      if (redirectOrigins) checkRedirectOrigins(redirectOrigins, originsLabel);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    const loopback = isLoopback(host);
    // Listening for signals from the start: a SIGTERM while starting up is a stop request too.
    const stopRequested = untilSignal();

    const configuredHash = configuredAdminKeyHash();
    const database = await openDatabase({ db: args.string('db'), create: true, warn });
    const { store } = database;
    let app: Awaited<ReturnType<typeof buildServer>> | undefined;
    // On a loopback host without --public-url the connect flow calls back to this server
    // itself, once the port is known (--port 0).
    let listeningOn = '';
    const publicBase = publicUrl ?? (loopback ? () => listeningOn : undefined);
    try {
      const adminKeyHash = configuredHash ?? (await storedAdminKeyHash(store, database.kind));
      app = await buildServer({
        store,
        keyRing: database.keyRing,
        adminKeyHash,
        logger: { level: logLevel },
        shutdownGraceMs: graceSeconds * 1000,
        webhooks: { allowPrivate: allowPrivateWebhooks },
        connect:
          publicBase === undefined
            ? undefined
            : {
                callbackUrl:
                  typeof publicBase === 'string'
                    ? connectCallbackUrl(publicBase)
                    : () => connectCallbackUrl(publicBase()),
                redirectOrigins,
              },
      });
      await app.listen({ port, host });
    } catch (error) {
      await app?.close().catch(() => {});
      await store.close().catch(() => {});
      throw listenError(error, host, port);
    }
    const address = app.server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    listeningOn = `http://${shown}:${address.port}`;
    note(
      `Tokenwarden listening on ${listeningOn} (TLS off; store ${database.kind} ` +
        `${database.location}; keys from ${database.keySource}; public URL ` +
        `${publicUrl ? redactUrl(publicUrl) : loopback ? listeningOn : 'none, connect flow off'}; ` +
        `shutdown grace ${graceSeconds} s${allowPrivateWebhooks ? '; webhooks to private addresses allowed' : ''})`,
    );
    await stopRequested;
    note(`Shutting down: finishing requests in flight (at most ${graceSeconds} s).`);
    await app.close();
    await store.close();
    reportShutdown(shutdownReport(app));
    // Nothing should be left to run; if something is (a stuck driver call), do not hang on it.
    setTimeout(() => process.exit(), 5_000).unref();
  },
};

/** An option's value: the flag, else the environment variable, else undefined (the default). */
function configured(args: Args, flag: string, env: string) {
  const fromFlag = args.string(flag) || undefined;
  const fromEnv = process.env[env] || undefined;
  const value = fromFlag ?? fromEnv;
  const label = fromFlag === undefined && fromEnv !== undefined ? env : `--${flag}`;
  return {
    value,
    label,
    int(fallback: number, max: number): number {
      return value === undefined ? fallback : parseInteger(value, label, { min: 0, max }, 'serve');
    },
  };
}

/** A boolean option: the flag, else the environment variable (`true` or `false`), else false. */
function booleanSetting(flag: boolean, env: string): boolean {
  if (flag) return true;
  const value = process.env[env];
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw new CliError(`${env} must be true or false`);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** What the stop could not finish, or "Stopped.". */
function reportShutdown(report: ShutdownReport | undefined): void {
  if (report && report.answeredAtGrace > 0) {
    note(
      `${report.answeredAtGrace} request(s) still running at the end of the grace period ` +
        'were answered 503 (retryable).',
    );
  }
  if (report && report.auditUnwritten > 0) {
    note(
      `Stopped, but ${report.auditUnwritten} audit event(s) could not be written: the store ` +
        'refused them (see the log); they are lost.',
    );
    process.exitCode = 1;
    return;
  }
  note('Stopped.');
}

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
