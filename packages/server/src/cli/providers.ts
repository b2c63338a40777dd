// `tokenwarden providers put|update|test|list|show`: a provider's token endpoint, client
// credentials and refresh behaviour. The client secret goes in and never comes back out.
import { SETTING_ENTRIES, type ProbeResult, type Setting } from '@tokenwarden/core';
import { ApiClient, API_HELP, API_OPTIONS } from './api.ts';
import { defineCommand, exactlyOne, type Args, type OptionSpec } from './args.ts';
import { CliError, UsageError } from './errors.ts';
import { group } from './group.ts';
import { readText } from './input.ts';
import { printFields, printJson } from './output.ts';
import { showList, showOne } from './show.ts';

/** A provider as the API shows it: the columns `list` prints, and every setting's wire name. */
interface Provider extends Record<string, unknown> {
  name: string;
  token_url: string;
  client_id: string;
  has_client_secret: boolean;
  rotates_refresh_tokens?: boolean;
}

/** Each setting of core's table is one flag, named after its wire name unless `flag` says. */
const FLAGS = SETTING_ENTRIES.map(([, setting]) => ({
  setting,
  flag: setting.flag ?? setting.wire.replaceAll('_', '-'),
}));

const SECRET_FLAGS = FLAGS.filter(({ setting }) => setting.secret);

const PUT_HELP = `Usage: tokenwarden providers put <name> (--preset <preset> | --token-url <url>) --client-id <id> [options]

Creates or replaces a provider (admin key). The whole configuration is replaced, but a stored
client secret is never dropped by leaving it out: give it again, or pass --drop-client-secret.
To change single settings and keep the rest, use 'tokenwarden providers update'. The client
secret is stored encrypted and never shown again. --preset starts from a catalog entry
('tokenwarden presets' lists them), or 'oidc' with --issuer; every option given overrides the
preset's. Refresh behaviour defaults to the cautious choice (see docs/protocol.md).

Options:
${optionsHelp()}
${dropHelp()}

${API_HELP}`;

function dropHelp(): string {
  return SECRET_FLAGS.map(
    ({ flag }) =>
      `  --drop-${flag}\n      Remove the stored ${flag.replaceAll('-', ' ')} on purpose.`,
  ).join('\n');
}

/** Each flag with its value, then the setting's doc line (and default) indented below it. */
function optionsHelp(): string {
  const entries: string[] = [];
  for (const { setting, flag } of FLAGS) {
    const fallback = setting.default;
    const notes = [setting.doc];
    if (typeof fallback === 'boolean') notes.push(`Default ${fallback ? 'yes' : 'no'}.`);
    else if (fallback !== undefined && typeof fallback !== 'object') {
      notes.push(`Default ${String(fallback)}.`);
    }
    if (isRepeated(setting)) notes.push('Repeatable.');
    if (setting.secret) {
      notes.push(
        `Inline it is visible to other local users: prefer --${flag}-file <path> (a file, or '-'`,
        `for stdin) or the env ${secretEnv(setting)}.`,
      );
    }
    entries.push(`  --${flag} ${placeholder(setting)}\n${wrap(notes.join(' '), '      ')}`);
  }
  return entries.join('\n');
}

/** `text` in lines of at most 96 characters, each starting with `indent`. */
function wrap(text: string, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > 96) {
      lines.push(indent + line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, indent + line].join('\n');
}

function placeholder(setting: Setting<unknown>): string {
  const schema = setting.schema;
  if (Array.isArray(schema.enum)) return `<${(schema.enum as string[]).join('|')}>`;
  switch (schema.type) {
    case 'boolean':
      return '<yes|no>';
    case 'integer':
    case 'number':
      return '<n>';
    case 'object':
      return '<key=value>';
    default: {
      const item = (schema.type === 'array' ? schema.items : schema) as {
        format?: string;
        type?: string;
      };
      if (item.type === 'integer') return '<n>';
      return item.format === 'uri' ? '<url>' : '<value>';
    }
  }
}

function isRepeated(setting: Setting<unknown>): boolean {
  return setting.schema.type === 'array' || setting.schema.type === 'object';
}

function secretEnv(setting: Setting<unknown>): string {
  return `TOKENWARDEN_${setting.wire.toUpperCase()}`;
}

/** A flag per setting (a secret's also as `--<flag>-file` and `--drop-<flag>`). */
function settingOptions(): OptionSpec {
  const options: OptionSpec = { ...API_OPTIONS };
  for (const { setting, flag } of FLAGS) {
    options[flag] = { type: 'string', multiple: isRepeated(setting) };
    if (setting.secret) {
      options[`${flag}-file`] = { type: 'string' };
      options[`drop-${flag}`] = { type: 'boolean' };
    }
  }
  return options;
}

/**
 * The settings given as flags, under their wire names; a secret to drop as null. `partial`: none
 * is required. Throws UsageError.
 */
function settingsBody(args: Args, partial: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const { setting, flag } of FLAGS) {
    const value = flagValue(args, setting, flag, partial);
    if (value !== undefined) body[setting.wire] = value;
  }
  return body;
}

const putCommand = defineCommand({
  name: 'providers put',
  summary: 'create or replace a provider',
  help: PUT_HELP,
  options: settingOptions(),
  positionals: exactlyOne('provider name'),
  async run(args) {
    const name = args.positionals[0]!;
    const body = settingsBody(args, false);
    if (body.preset === undefined && body.token_url === undefined) args.required('token-url');
    const api = ApiClient.fromArgs(args);
    const saved = await api
      .put<Provider>(`/v1/providers/${encodeURIComponent(name)}`, body)
      .catch((error: unknown) => {
        throw wouldDropSecret(error, name) ?? error;
      });
    if (args.flag('json')) printJson(saved);
    else printProvider(saved);
  },
});

/** The API's refusal to drop a stored secret, in the CLI's words: which flag says what. */
function wouldDropSecret(error: unknown, name: string): CliError | undefined {
  if (!(error instanceof CliError)) return undefined;
  const refused = SECRET_FLAGS.find(({ setting }) =>
    error.message.startsWith(`invalid_request: ${setting.wire}: provider ${name} has a stored`),
  );
  if (!refused) return undefined;
  const { flag } = refused;
  return new CliError(
    `provider ${name} has a stored ${flag.replaceAll('-', ' ')} that this put would drop: give ` +
      `it again (--${flag}-file), pass --drop-${flag}, or change single settings with ` +
      `'tokenwarden providers update ${name}'`,
  );
}

const UPDATE_HELP = `Usage: tokenwarden providers update <name> [options]

Changes the settings given (admin key) and keeps every other one, the client secret included
(PATCH /v1/providers/{name}). The result is checked as a whole; nothing is stored when it is
refused. --unset removes a setting (back to its default or the preset's). The client secret
changes only with --client-secret, --client-secret-file or --drop-client-secret (not from the
environment, as put reads it).
e.g. tokenwarden providers update slack --rotation no --scope chat:write --scope users:read

Options: those of 'providers put' (see its --help), none required, and
  --unset <option>
      Remove this setting, e.g. --unset scope. Repeatable.
${dropHelp()}

${API_HELP}`;

const updateCommand = defineCommand({
  name: 'providers update',
  summary: 'change some settings of a provider, keeping the rest',
  help: UPDATE_HELP,
  options: { ...settingOptions(), unset: { type: 'string', multiple: true } },
  positionals: exactlyOne('provider name'),
  async run(args) {
    const name = args.positionals[0]!;
    const body = settingsBody(args, true);
    for (const option of args.list('unset')) {
      const found = FLAGS.find(({ flag }) => flag === option.replace(/^--/, ''));
      if (!found || found.setting.required === 'given') {
        const allowed = FLAGS.filter(({ setting }) => setting.required !== 'given');
        throw new UsageError(
          `--unset ${option}: not a setting that can be removed; one of ${allowed.map((f) => f.flag).join(', ')}`,
          args.command,
        );
      }
      if (body[found.setting.wire] !== undefined && body[found.setting.wire] !== null) {
        throw new UsageError(
          `give --${found.flag} or --unset ${found.flag}, not both`,
          args.command,
        );
      }
      body[found.setting.wire] = null;
    }
    if (Object.keys(body).length === 0) {
      throw new UsageError('give at least one setting to change', args.command);
    }
    const api = ApiClient.fromArgs(args);
    const saved = await api.patch<Provider>(`/v1/providers/${encodeURIComponent(name)}`, body);
    if (args.flag('json')) printJson(saved);
    else printProvider(saved);
  },
});

const TEST_HELP = `Usage: tokenwarden providers test <name>

Checks a provider's settings against its token endpoint (admin key), redeeming nothing: the
server sends a refresh token grant with a made-up refresh token. 'accepted' (the endpoint
answered invalid_grant) means it is reachable and takes the client credentials;
'client_rejected' (invalid_client, 401) that the client id, secret or client auth is wrong;
'unreachable' that it did not answer (network error, timeout, 5xx, 429). Exits 0 only when
accepted.

${API_HELP}`;

const testCommand = defineCommand({
  name: 'providers test',
  summary: "check a provider's settings against its token endpoint",
  help: TEST_HELP,
  options: API_OPTIONS,
  positionals: exactlyOne('provider name'),
  async run(args) {
    const name = args.positionals[0]!;
    const result = await ApiClient.fromArgs(args).post<ProbeResult & { token_url: string }>(
      `/v1/providers/${encodeURIComponent(name)}/test`,
      {},
    );
    if (args.flag('json')) printJson(result);
    else process.stdout.write(`${result.verdict}: ${result.message}\n`);
    if (result.verdict !== 'accepted') process.exitCode = 1;
  },
});

/** A flag's value as the API takes it; undefined when not given. Throws UsageError. */
function flagValue(args: Args, setting: Setting<unknown>, flag: string, partial: boolean): unknown {
  const schema = setting.schema as { type: string; minimum?: number; maximum?: number };
  if (setting.secret) return secretOrDrop(args, flag, partial ? undefined : secretEnv(setting));
  if (setting.required === 'given' && !partial) return args.required(flag);
  switch (schema.type) {
    case 'boolean':
      return yesNo(args, flag);
    case 'integer':
    case 'number':
      return args.int(flag, {
        min: schema.minimum ?? 0,
        max: schema.maximum ?? Number.MAX_SAFE_INTEGER,
      });
    case 'array': {
      const items = args.list(flag);
      if (items.length === 0) return undefined;
      // A list of numbers (HTTP statuses) is given as numbers; the API checks their range.
      if ((schema as { items?: { type?: string } }).items?.type !== 'integer') return items;
      return items.map((item) => {
        if (!/^\d{1,9}$/.test(item)) {
          throw new UsageError(`--${flag} expects whole numbers, got '${item}'`, 'providers put');
        }
        return Number(item);
      });
    }
    case 'object':
      return keyValues(args, flag);
    default:
      return args.string(flag);
  }
}

/** `--param domain=acme.okta.com` → `{ domain: 'acme.okta.com' }`. */
export function presetParams(args: Args): Record<string, string> | undefined {
  return keyValues(args, 'param');
}

/** A repeatable `--<name> key=value` flag as an object; undefined when not given. */
function keyValues(args: Args, name: string): Record<string, string> | undefined {
  const pairs = args.list(name);
  if (pairs.length === 0) return undefined;
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) throw new UsageError(`--${name} expects key=value, got '${pair}'`, 'providers put');
    params[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return params;
}

/**
 * A secret from `--<flag>-file` (or stdin), `--<flag>`, or the environment variable `env` (an
 * update reads none: an exported secret must not replace the stored one unasked); null for
 * `--drop-<flag>`.
 */
function secretOrDrop(
  args: Args,
  flag: string,
  env: string | undefined,
): string | null | undefined {
  const inline = args.string(flag);
  const file = args.string(`${flag}-file`);
  const given = [inline, file].filter((value) => value !== undefined).length;
  if (given + (args.flag(`drop-${flag}`) ? 1 : 0) > 1) {
    throw new UsageError(
      `give one of --${flag}, --${flag}-file and --drop-${flag}, not several`,
      args.command,
    );
  }
  if (args.flag(`drop-${flag}`)) return null;
  if (file !== undefined) return readText(file, `the ${flag.replaceAll('-', ' ')}`);
  return inline ?? ((env && process.env[env]) || undefined);
}

function yesNo(args: Args, name: string): boolean | undefined {
  const value = args.string(name);
  if (value === undefined) return undefined;
  if (['yes', 'true', '1'].includes(value)) return true;
  if (['no', 'false', '0'].includes(value)) return false;
  throw new UsageError(`--${name} must be yes or no, got '${value}'`, args.command);
}

/** Every setting the API shows, in the table's order, labelled with its wire name. */
function printProvider(p: Provider): void {
  const fields: [string, unknown][] = [['provider', p.name]];
  for (const { setting } of FLAGS) {
    const label = setting.wire.replaceAll('_', ' ');
    if (setting.secret) {
      fields.push([label, p[`has_${setting.wire}`] ? 'stored (encrypted)' : 'none']);
    } else if (setting.view !== 'whenSet' || p[setting.wire] !== undefined) {
      const value = p[setting.wire];
      fields.push([label, Array.isArray(value) ? value.join(' ') : value]);
    }
  }
  printFields(fields);
}

const LIST_HELP = `Usage: tokenwarden providers list

Lists the configured providers (admin key), without their secrets.

${API_HELP}`;

const listCommand = defineCommand({
  name: 'providers list',
  summary: 'list providers',
  help: LIST_HELP,
  options: API_OPTIONS,
  async run(args) {
    await showList<Provider>(args, '/v1/providers', 'providers', [
      ['NAME', (p) => p.name],
      ['TOKEN URL', (p) => p.token_url],
      ['CLIENT ID', (p) => p.client_id],
      ['SECRET', (p) => (p.has_client_secret ? 'yes' : 'no')],
      ['ROTATES', (p) => p.rotates_refresh_tokens],
    ]);
  },
});

const SHOW_HELP = `Usage: tokenwarden providers show <name>

Shows one provider's configuration (admin key), without its secret.

${API_HELP}`;

const showCommand = defineCommand({
  name: 'providers show',
  summary: 'show one provider',
  help: SHOW_HELP,
  options: API_OPTIONS,
  positionals: exactlyOne('provider name'),
  async run(args) {
    await showOne(args, '/v1/providers', printProvider);
  },
});

export const providersCommand = group('providers', 'configure OAuth providers', [
  putCommand,
  updateCommand,
  testCommand,
  listCommand,
  showCommand,
]);
