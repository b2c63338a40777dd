// `tokenwarden providers put|list|show`: a provider's token endpoint, client credentials and
// refresh behaviour. The client secret goes in and never comes back out.
import { SETTING_ENTRIES, type Setting } from '@tokenwarden/core';
import { ApiClient, API_HELP, API_OPTIONS } from './api.ts';
import { parseCommand, type Args, type Command, type OptionSpec } from './args.ts';
import { UsageError } from './errors.ts';
import { group } from './group.ts';
import { itemsOf, readText } from './input.ts';
import { printFields, printJson, printTable } from './output.ts';

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

const PUT_HELP = `Usage: tokenwarden providers put <name> (--preset <preset> | --token-url <url>) --client-id <id> [options]

Creates or replaces a provider (admin key). The whole configuration is replaced: a client
secret left out means none. The client secret is stored encrypted and never shown again.
--preset starts from a catalog entry (google, microsoft, salesforce, slack, github, atlassian,
xero, ...: GET /v1/presets), or 'oidc' with --issuer; every option given overrides the preset's.
Refresh behaviour defaults to the cautious choice (see docs/protocol.md).

Options:
${optionsHelp()}

${API_HELP}`;

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
      const item = (schema.type === 'array' ? schema.items : schema) as { format?: string };
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

const putCommand: Command = {
  name: 'providers put',
  summary: 'create or replace a provider',
  help: PUT_HELP,
  async run(argv) {
    const options: OptionSpec = { ...API_OPTIONS };
    for (const { setting, flag } of FLAGS) {
      options[flag] = { type: 'string', multiple: isRepeated(setting) };
      if (setting.secret) options[`${flag}-file`] = { type: 'string' };
    }
    const args = parseCommand(argv, this, options, { min: 1, max: 1, names: 'provider name' });
    if (!args) return;
    const name = args.positionals[0]!;
    const body: Record<string, unknown> = {};
    for (const { setting, flag } of FLAGS) body[setting.wire] = flagValue(args, setting, flag);
    if (body.preset === undefined && body.token_url === undefined) args.required('token-url');
    const api = ApiClient.fromArgs(args);
    const saved = await api.put<Provider>(`/v1/providers/${encodeURIComponent(name)}`, body);
    if (args.flag('json')) printJson(saved);
    else printProvider(saved);
  },
};

/** A flag's value as the API takes it; undefined when not given. Throws UsageError. */
function flagValue(args: Args, setting: Setting<unknown>, flag: string): unknown {
  const schema = setting.schema as { type: string; minimum?: number; maximum?: number };
  if (setting.secret) return secret(args, flag, secretEnv(setting));
  if (setting.required === 'given') return args.required(flag);
  switch (schema.type) {
    case 'boolean':
      return yesNo(args, flag);
    case 'integer':
    case 'number':
      return args.int(flag, {
        min: schema.minimum ?? 0,
        max: schema.maximum ?? Number.MAX_SAFE_INTEGER,
      });
    case 'array':
      return args.list(flag).length > 0 ? args.list(flag) : undefined;
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

/** A secret from `--<flag>-file` (or stdin), `--<flag>`, or the environment. */
function secret(args: Args, flag: string, env: string): string | undefined {
  const inline = args.string(flag);
  const file = args.string(`${flag}-file`);
  if (inline !== undefined && file !== undefined) {
    throw new UsageError(`give --${flag} or --${flag}-file, not both`, args.command);
  }
  if (file !== undefined) return readText(file, `the ${flag.replaceAll('-', ' ')}`);
  return inline ?? (process.env[env] || undefined);
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
