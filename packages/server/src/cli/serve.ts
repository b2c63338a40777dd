// `tokenwarden serve`: the HTTP API on the embedded SQLite default or a shared Postgres.
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { KyselyStore } from '@tokenwarden/core';
import {
  redirectOrigins as checkRedirectOrigins,
  shutdownReport,
  type ShutdownReport,
} from '../app.ts';
import { ADMIN_KEY_SETTING } from '../auth/admin-keys.ts';
import { buildServer, generateApiKey, hashApiKey } from '../index.ts';
import { adminKeyFile, writeAdminKeyFile } from './admin-key-file.ts';
import { parseCommand, parseInteger, type Args, type Command } from './args.ts';
import { openDatabase, DB_HELP } from './database.ts';
import { CliError, oneLine } from './errors.ts';
import { note } from './output.ts';
import { redactUrl } from './redact-url.ts';
import { keepKeysCurrent } from './key-reload.ts';
import { openWhenKeysReachable } from './not-ready.ts';
import { readTls, reloadOnSighup, type TlsSettings } from './tls.ts';
import { startTracing, tracingConfigured, type Tracing } from '../tracing/sdk.ts';

const HELP = `Usage: tokenwarden serve [--db <path|url>] [--port 8080] [--host 127.0.0.1] [--public-url <url>]
                         [--redirect-origins <origins>] [--shutdown-grace <s>] [--log-level <level>]
                         [--tls-cert <file> --tls-key <file> [--tls-client-ca <file>]]
                         [--proxy-replay-limit <bytes>] [--proxy-connect-timeout <ms>]
                         [--proxy-headers-timeout <ms>] [--proxy-idle-timeout <ms>]
                         [--allow-private-webhooks]

Runs the HTTP API. With no --db it uses ./tokenwarden.sqlite and a key file
./tokenwarden.keys generated on first start (mode 0600; back it up). A postgres:// URL
needs TOKENWARDEN_KEYS or TOKENWARDEN_KEY_FILE, the same on every replica.

The admin key comes from TOKENWARDEN_ADMIN_KEY. Without it, the first start on SQLite
generates one and writes it to a file beside the database (tokenwarden.admin-key, mode
0600; the database keeps only its hash; 'tokenwarden admin-key rotate' replaces it);
Postgres refuses to start.

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
                   request, except token hand-outs answered: the audit log has each),
                   debug, trace or silent (env TOKENWARDEN_LOG_LEVEL)
  --tls-cert <file>, --tls-key <file>
                   serve HTTPS only, with this PEM certificate (chain) and its unencrypted
                   PEM private key (env TOKENWARDEN_TLS_CERT, TOKENWARDEN_TLS_KEY). SIGHUP
                   re-reads both: new connections get the new certificate, open ones finish
  --tls-client-ca <file>
                   require a client certificate issued by this PEM CA on every connection
                   (env TOKENWARDEN_TLS_CLIENT_CA); a service client created with a
                   certificate binding is refused without that very certificate
  --proxy-replay-limit <bytes>
                   proxy mode: request bodies up to this size are held so a 401 can be
                   retried with a fresh token; larger ones stream (env
                   TOKENWARDEN_PROXY_REPLAY_LIMIT, default 1048576)
  --proxy-connect-timeout, --proxy-headers-timeout, --proxy-idle-timeout <ms>
                   proxy mode: how long the provider's API may take to accept the
                   connection (default 10000), to answer (30000), and between two pieces of
                   its body (30000); 0 waits forever (env TOKENWARDEN_PROXY_CONNECT_TIMEOUT,
                   TOKENWARDEN_PROXY_HEADERS_TIMEOUT, TOKENWARDEN_PROXY_IDLE_TIMEOUT)
  --allow-private-webhooks
                   let webhook endpoints be on private, loopback or link-local addresses and
                   plain http: for development, and receivers inside your own network (env
                   TOKENWARDEN_ALLOW_PRIVATE_WEBHOOKS=true; default off: https to public
                   addresses only, checked on the address resolved at each delivery)

At start it prints one line: the address, TLS (off: put a TLS proxy in front), the store
(a Postgres URL without its password), where the keys come from and the public URL.

Keys: TOKENWARDEN_KEYS, a key file, or TOKENWARDEN_KMS_KEY_ID (data keys wrapped by AWS
KMS, stored in the database; AWS_REGION, AWS_ENDPOINT_URL_KMS, TOKENWARDEN_KMS_CONTEXT
name=value[,...]). They are reloaded on SIGHUP, every 10 s, and when a ciphertext names a key
not loaded yet. While the KMS cannot be reached at start, /readyz answers 503 with the reason.
  --opened-token-cache <n>  access tokens kept opened for fast hand-outs (env
                   TOKENWARDEN_OPENED_TOKEN_CACHE, default 1000; 0 keeps none)

Traces (OpenTelemetry): off unless the standard variables ask for them:
OTEL_TRACES_EXPORTER=otlp (with OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318)
or console; OTEL_SERVICE_NAME (default tokenwarden), OTEL_TRACES_SAMPLER, ... A caller's W3C
traceparent header is the parent of its request's spans; log lines carry trace_id/span_id.

SIGINT or SIGTERM stop accepting requests and the scheduler's claims, let requests in
flight finish for up to the grace period, then abort their provider requests (their
leases handed back, so another replica takes over at once) and answer what is left 503,
retryable; the audit is written and the process exits 0 (1 if audit events could not be
written, which it says). A second signal exits at once.`;

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
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      'proxy-replay-limit': { type: 'string' },
      'proxy-connect-timeout': { type: 'string' },
      'proxy-headers-timeout': { type: 'string' },
      'proxy-idle-timeout': { type: 'string' },
      'opened-token-cache': { type: 'string' },
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
    const openedTokenCache = setting('opened-token-cache', 'TOKENWARDEN_OPENED_TOKEN_CACHE').int(
      1000,
      1_000_000,
    );
    const logLevelSetting = setting('log-level', 'TOKENWARDEN_LOG_LEVEL');
    const logLevel = logLevelSetting.value ?? 'info';
    if (!LOG_LEVELS.includes(logLevel)) {
      throw new CliError(`${logLevelSetting.label} must be one of ${LOG_LEVELS.join(', ')}`);
    }
    const HOUR_MS = 3_600_000;
    const proxy = {
      replayLimitBytes: setting('proxy-replay-limit', 'TOKENWARDEN_PROXY_REPLAY_LIMIT').int(
        1024 * 1024,
        64 * 1024 * 1024,
      ),
      connectTimeoutMs: setting('proxy-connect-timeout', 'TOKENWARDEN_PROXY_CONNECT_TIMEOUT').int(
        10_000,
        HOUR_MS,
      ),
      headersTimeoutMs: setting('proxy-headers-timeout', 'TOKENWARDEN_PROXY_HEADERS_TIMEOUT').int(
        30_000,
        HOUR_MS,
      ),
      idleTimeoutMs: setting('proxy-idle-timeout', 'TOKENWARDEN_PROXY_IDLE_TIMEOUT').int(
        30_000,
        HOUR_MS,
      ),
    };
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
    const tls = tlsSettings(setting);
    if (!tls && !loopback) {
      warn(
        `serving plain HTTP on ${host}, not a loopback address: API keys and access tokens ` +
          'cross the network in clear unless a TLS proxy is in front (or use --tls-cert/--tls-key)',
      );
    }
    // Listening for signals from the start: a SIGTERM while starting up is a stop request too.
    const stopRequested = untilSignal();

    const configuredHash = configuredAdminKeyHash();
    const reachable = await openWhenKeysReachable(
      () => openDatabase({ db: args.string('db'), create: true, warn }),
      { host, port, https: tls?.options },
      stopRequested,
      note,
    );
    if (reachable === undefined) {
      note('Stopped.');
      return;
    }
    const { opened: database, port: listenPort } = reachable;
    const { store } = database;
    let stopKeys: (() => Promise<void>) | undefined;
    let tracing: Tracing | undefined;
    let app: Awaited<ReturnType<typeof buildServer>> | undefined;
    // On a loopback host without --public-url the connect flow calls back to this server
    // itself, once the port is known (--port 0).
    let listeningOn = '';
    const publicBase = publicUrl ?? (loopback ? () => listeningOn : undefined);
    try {
      if (configuredHash === undefined) await ensureStoredAdminKey(store, database);
      tracing = tracingConfigured() ? await startTracing() : undefined;
      const adminKeyHash = configuredHash ?? 'stored';
      app = await buildServer({
        store,
        keyRing: database.keyRing,
        broker: { openedTokenCache },
        adminKeyHash,
        logger: { level: logLevel },
        shutdownGraceMs: graceSeconds * 1000,
        https: tls?.options,
        proxy,
        webhooks: { allowPrivate: allowPrivateWebhooks },
        tracing: tracing !== undefined,
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
      await app.listen({ port: listenPort, host });
      stopKeys = await keepKeysCurrent(database, (message) => app?.log.info(message));
    } catch (error) {
      await stopKeys?.().catch(() => {});
      await app?.close().catch(() => {});
      await store.close().catch(() => {});
      await tracing?.shutdown().catch(() => {});
      throw listenError(error, host, port);
    }
    const address = app.server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    listeningOn = `${tls ? 'https' : 'http'}://${shown}:${address.port}`;
    const stopReloading = tls
      ? reloadOnSighup(app.server as unknown as HttpsServer, tls, note)
      : () => {};
    note(
      `Tokenwarden listening on ${listeningOn} (${tls?.summary ?? 'TLS off'}; store ${database.kind} ` +
        `${database.location}; keys from ${database.keySource}; public URL ` +
        `${publicUrl ? redactUrl(publicUrl) : loopback ? listeningOn : 'none, connect flow off'}; ` +
        `shutdown grace ${graceSeconds} s${allowPrivateWebhooks ? '; webhooks to private addresses allowed' : ''})`,
    );
    await stopRequested;
    note(`Shutting down: finishing requests in flight (at most ${graceSeconds} s).`);
    stopReloading();
    await stopKeys?.();
    await app.close();
    await store.close();
    // The last spans (the shutdown's own refreshes) are exported before the process exits.
    await tracing?.shutdown().catch(() => {});
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

/** Both files or neither; the client CA only with them. */
function tlsSettings(setting: (flag: string, env: string) => ReturnType<typeof configured>) {
  const cert = setting('tls-cert', 'TOKENWARDEN_TLS_CERT');
  const key = setting('tls-key', 'TOKENWARDEN_TLS_KEY');
  const clientCa = setting('tls-client-ca', 'TOKENWARDEN_TLS_CLIENT_CA');
  if (cert.value === undefined && key.value === undefined) {
    if (clientCa.value !== undefined) {
      throw new CliError(
        `${clientCa.label} needs --tls-cert and --tls-key: client certificates need TLS`,
      );
    }
    return undefined;
  }
  if (cert.value === undefined) throw new CliError(`${key.label} needs --tls-cert too`);
  if (key.value === undefined) throw new CliError(`${cert.label} needs --tls-key too`);
  return readTls({
    cert: cert.value,
    key: key.value,
    clientCa: clientCa.value,
  }) satisfies TlsSettings;
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
 * Without TOKENWARDEN_ADMIN_KEY: the hash kept in the database. Only the embedded default
 * generates a key at first start, written to a 0600 file beside the database (never to the
 * output, which ends up wherever the logs go); a shared database must be given one, or the first
 * replica to start would hold a key nobody else knows.
 */
async function ensureStoredAdminKey(
  store: KyselyStore,
  database: { kind: 'sqlite' | 'postgres'; location: string },
): Promise<void> {
  if ((await store.service.getSetting(ADMIN_KEY_SETTING)) !== undefined) return;
  if (database.kind === 'postgres') {
    throw new CliError(
      'no admin key: set TOKENWARDEN_ADMIN_KEY (a shared Postgres database never gets a generated admin key; give every replica the same one)',
    );
  }
  const key = generateApiKey();
  if (!(await store.service.setSettingIfAbsent(ADMIN_KEY_SETTING, hashApiKey(key)))) {
    return; // Another process starting on the same file stored its key first.
  }
  // Written once this key is the database's: a file that cannot be written leaves a stored hash
  // nobody holds, which 'admin-key rotate' (on the database itself) replaces.
  const path = adminKeyFile(database.location);
  writeAdminKeyFile(path, key);
  note(
    `Generated the admin key and wrote it to ${path} (mode 0600; the database keeps only its ` +
      'hash). Give it to the admin commands as TOKENWARDEN_ADMIN_KEY or TOKENWARDEN_ADMIN_KEY_FILE; ' +
      "rotate it with 'tokenwarden admin-key rotate'.",
  );
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
