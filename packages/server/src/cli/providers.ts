// `tokenwarden providers put|list|show`: a provider's token endpoint, client credentials and
// refresh behaviour. The client secret goes in and never comes back out.
import { ApiClient, API_HELP, API_OPTIONS } from './api.ts';
import { parseCommand, parseInteger, type Args, type Command } from './args.ts';
import { UsageError } from './errors.ts';
import { group } from './group.ts';
import { itemsOf, readText } from './input.ts';
import { printFields, printJson, printTable } from './output.ts';

interface Provider {
  name: string;
  token_url: string;
  client_id: string;
  client_auth: string;
  has_client_secret: boolean;
  authorize_url?: string | null;
  revocation_url?: string | null;
  scopes?: string[];
  default_access_ttl_seconds?: number;
  rotates_refresh_tokens?: boolean;
  reuse_detection?: boolean;
  reuse_grace_seconds?: number;
  request_timeout_ms?: number;
  refresh_token_idle_seconds?: number | null;
}

const PUT_HELP = `Usage: tokenwarden providers put <name> (--preset <preset> | --token-url <url>) --client-id <id> [options]

Creates or replaces a provider (admin key). The whole configuration is replaced: a client
secret left out means none. The client secret is stored encrypted and never shown again.

Options:
  --preset <preset>            start from a catalog entry (google, microsoft, salesforce, slack,
                               github, atlassian, xero, ...: GET /v1/presets), or 'oidc' with
                               --issuer; every option given overrides the preset's
  --param <key=value>          a value for a {placeholder} of the preset's URLs, e.g.
                               --param domain=acme.okta.com; repeatable
  --issuer <url>               the OpenID Connect issuer (discovered with --preset oidc)
  --token-url <url>            the provider's token endpoint (required without --preset;
                               https, or http on loopback)
  --client-id <id>             OAuth client id (required)
  --client-secret-file <path>  read the client secret from a file, or '-' for stdin
  --client-secret <secret>     the secret inline: visible to other local users, so prefer
                               --client-secret-file or the env TOKENWARDEN_CLIENT_SECRET
  --client-auth <method>       client_secret_basic (default) or client_secret_post
  --authorize-url <url>        authorization endpoint (for the connect flow)
  --revocation-url <url>       revocation endpoint
  --scope <scope>              a default scope; repeat for several

Refresh behaviour (defaults are the cautious ones; see docs/protocol.md):
  --rotation <yes|no>               does the provider rotate refresh tokens on each refresh
  --reuse-detection <yes|no>        does replaying a spent refresh token revoke the family
  --reuse-grace-seconds <n>         how long a spent refresh token is still answered
  --default-access-ttl <seconds>    access token lifetime when a response omits expires_in
  --request-timeout-ms <n>          deadline for one token request
  --refresh-token-idle-seconds <n>  refresh tokens expire after this long unused

${API_HELP}`;

const putCommand: Command = {
  name: 'providers put',
  summary: 'create or replace a provider',
  help: PUT_HELP,
  async run(argv) {
    const args = parseCommand(
      argv,
      this,
      {
        ...API_OPTIONS,
        preset: { type: 'string' },
        param: { type: 'string', multiple: true },
        issuer: { type: 'string' },
        'token-url': { type: 'string' },
        'client-id': { type: 'string' },
        'client-secret': { type: 'string' },
        'client-secret-file': { type: 'string' },
        'client-auth': { type: 'string' },
        'authorize-url': { type: 'string' },
        'revocation-url': { type: 'string' },
        scope: { type: 'string', multiple: true },
        rotation: { type: 'string' },
        'reuse-detection': { type: 'string' },
        'reuse-grace-seconds': { type: 'string' },
        'default-access-ttl': { type: 'string' },
        'request-timeout-ms': { type: 'string' },
        'refresh-token-idle-seconds': { type: 'string' },
      },
      { min: 1, max: 1, names: 'provider name' },
    );
    if (!args) return;
    const name = args.positionals[0]!;
    const preset = args.string('preset');
    const body = {
      preset,
      preset_params: presetParams(args),
      issuer: args.string('issuer'),
      token_url: preset === undefined ? args.required('token-url') : args.string('token-url'),
      client_id: args.required('client-id'),
      client_secret: clientSecret(args),
      client_auth: args.string('client-auth'),
      authorize_url: args.string('authorize-url'),
      revocation_url: args.string('revocation-url'),
      scopes: args.list('scope').length > 0 ? args.list('scope') : undefined,
      rotates_refresh_tokens: yesNo(args, 'rotation'),
      reuse_detection: yesNo(args, 'reuse-detection'),
      reuse_grace_seconds: args.int('reuse-grace-seconds', { min: 0, max: 86_400 }),
      default_access_ttl_seconds: args.int('default-access-ttl', { min: 1, max: 31_536_000 }),
      request_timeout_ms: args.int('request-timeout-ms', { min: 100, max: 60_000 }),
      refresh_token_idle_seconds: optionalInt(args, 'refresh-token-idle-seconds'),
    };
    const api = ApiClient.fromArgs(args);
    const saved = await api.put<Provider>(`/v1/providers/${encodeURIComponent(name)}`, body);
    if (args.flag('json')) printJson(saved);
    else printProvider(saved);
  },
};

/** `--param domain=acme.okta.com` → `{ domain: 'acme.okta.com' }`. */
export function presetParams(args: Args): Record<string, string> | undefined {
  const pairs = args.list('param');
  if (pairs.length === 0) return undefined;
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) throw new UsageError(`--param expects key=value, got '${pair}'`, 'providers put');
    params[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return params;
}

function clientSecret(args: Args): string | undefined {
  const inline = args.string('client-secret');
  const file = args.string('client-secret-file');
  if (inline !== undefined && file !== undefined) {
    throw new UsageError('give --client-secret or --client-secret-file, not both', args.command);
  }
  if (file !== undefined) return readText(file, 'the client secret');
  return inline ?? (process.env.TOKENWARDEN_CLIENT_SECRET || undefined);
}

function yesNo(args: Args, name: string): boolean | undefined {
  const value = args.string(name);
  if (value === undefined) return undefined;
  if (['yes', 'true', '1'].includes(value)) return true;
  if (['no', 'false', '0'].includes(value)) return false;
  throw new UsageError(`--${name} must be yes or no, got '${value}'`, args.command);
}

function optionalInt(args: Args, name: string): number | undefined {
  const value = args.string(name);
  return value === undefined
    ? undefined
    : parseInteger(value, `--${name}`, { min: 60, max: 315_360_000 }, args.command);
}

function printProvider(p: Provider): void {
  printFields([
    ['provider', p.name],
    ['token url', p.token_url],
    ['client id', p.client_id],
    ['client auth', p.client_auth],
    ['client secret', p.has_client_secret ? 'stored (encrypted)' : 'none'],
    ['authorize url', p.authorize_url],
    ['revocation url', p.revocation_url],
    ['scopes', p.scopes?.join(' ')],
    ['rotates refresh tokens', p.rotates_refresh_tokens],
    ['reuse detection', p.reuse_detection],
    ['reuse grace seconds', p.reuse_grace_seconds],
    ['default access ttl', p.default_access_ttl_seconds],
    ['request timeout ms', p.request_timeout_ms],
    ['refresh token idle seconds', p.refresh_token_idle_seconds],
  ]);
}

const LIST_HELP = `Usage: tokenwarden providers list

Lists the configured providers (admin key), without their secrets.

${API_HELP}`;

const listCommand: Command = {
  name: 'providers list',
  summary: 'list providers',
  help: LIST_HELP,
  async run(argv) {
    const args = parseCommand(argv, this, API_OPTIONS);
    if (!args) return;
    const body = await ApiClient.fromArgs(args).get<unknown>('/v1/providers');
    if (args.flag('json')) {
      printJson(body);
      return;
    }
    printTable(itemsOf<Provider>(body, 'providers'), [
      ['NAME', (p) => p.name],
      ['TOKEN URL', (p) => p.token_url],
      ['CLIENT ID', (p) => p.client_id],
      ['SECRET', (p) => (p.has_client_secret ? 'yes' : 'no')],
      ['ROTATES', (p) => p.rotates_refresh_tokens],
    ]);
  },
};

const SHOW_HELP = `Usage: tokenwarden providers show <name>

Shows one provider's configuration (admin key), without its secret.

${API_HELP}`;

const showCommand: Command = {
  name: 'providers show',
  summary: 'show one provider',
  help: SHOW_HELP,
  async run(argv) {
    const args = parseCommand(argv, this, API_OPTIONS, { min: 1, max: 1, names: 'provider name' });
    if (!args) return;
    const name = args.positionals[0]!;
    const p = await ApiClient.fromArgs(args).get<Provider>(
      `/v1/providers/${encodeURIComponent(name)}`,
    );
    if (args.flag('json')) printJson(p);
    else printProvider(p);
  },
};

export const providersCommand = group('providers', 'configure OAuth providers', [
  putCommand,
  listCommand,
  showCommand,
]);
