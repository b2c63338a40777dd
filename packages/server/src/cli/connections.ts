// `tokenwarden connections list|show|import|delete`.
import { ApiClient, API_HELP, API_OPTIONS } from './api.ts';
import { parseCommand, parseInteger, type Command } from './args.ts';
import { UsageError } from './errors.ts';
import { group } from './group.ts';
import { itemsOf, parseJsonObject, readJsonObject, readText } from './input.ts';
import { formatTime, note, printFields, printJson, printTable } from './output.ts';

interface Connection {
  id: string;
  provider: string;
  owner: string;
  status: string;
  status_reason?: string | null;
  version: number;
  access_expires_at?: unknown;
  refresh_expires_at?: unknown;
  scope?: string | null;
  metadata?: unknown;
  created_at?: unknown;
  updated_at?: unknown;
  last_error?: string | null;
}

const LIST_HELP = `Usage: tokenwarden connections list [--owner <owner>] [--provider <name>] [--status <status>]

Lists connections (never their tokens), ordered by id, one page at a time.

Options:
  --owner <owner>      only this owner's connections
  --provider <name>    only this provider's connections
  --status <status>    active, needs_reauth or revoked
  --cursor <cursor>    continue after a previous page
  --all                follow every page

${API_HELP}`;

const listCommand: Command = {
  name: 'connections list',
  summary: 'list connections',
  help: LIST_HELP,
  async run(argv) {
    const args = parseCommand(argv, this, {
      ...API_OPTIONS,
      owner: { type: 'string' },
      provider: { type: 'string' },
      status: { type: 'string' },
      cursor: { type: 'string' },
      all: { type: 'boolean' },
    });
    if (!args) return;
    const api = ApiClient.fromArgs(args);
    const rows: Connection[] = [];
    let cursor = args.string('cursor');
    let next: string | undefined;
    do {
      const page = await api.get<{ next_cursor?: string | null }>('/v1/connections', {
        owner: args.string('owner'),
        provider: args.string('provider'),
        status: args.string('status'),
        cursor,
      });
      rows.push(...itemsOf<Connection>(page, 'connections'));
      next = page?.next_cursor ?? undefined;
      cursor = next;
    } while (args.flag('all') && next);
    if (args.flag('json')) {
      printJson({ connections: rows, next_cursor: next ?? null });
      return;
    }
    printTable(rows, [
      ['ID', (c) => c.id],
      ['PROVIDER', (c) => c.provider],
      ['OWNER', (c) => c.owner],
      ['STATUS', (c) => (c.status_reason ? `${c.status} (${c.status_reason})` : c.status)],
      ['VERSION', (c) => c.version],
      ['ACCESS EXPIRES', (c) => formatTime(c.access_expires_at)],
    ]);
    if (next) note(`More connections: --cursor ${next} (or --all)`);
  },
};

const SHOW_HELP = `Usage: tokenwarden connections show <connection id>

Shows one connection: status, version, expiry times and metadata (never its tokens).

${API_HELP}`;

const showCommand: Command = {
  name: 'connections show',
  summary: 'show one connection',
  help: SHOW_HELP,
  async run(argv) {
    const args = parseCommand(argv, this, API_OPTIONS, { min: 1, max: 1, names: 'connection id' });
    if (!args) return;
    const id = args.positionals[0]!;
    const c = await ApiClient.fromArgs(args).get<Connection>(
      `/v1/connections/${encodeURIComponent(id)}`,
    );
    if (args.flag('json')) {
      printJson(c);
      return;
    }
    printFields([
      ['id', c.id],
      ['provider', c.provider],
      ['owner', c.owner],
      ['status', c.status_reason ? `${c.status} (${c.status_reason})` : c.status],
      ['version', c.version],
      ['access expires', formatTime(c.access_expires_at)],
      ['refresh expires', formatTime(c.refresh_expires_at)],
      ['scope', c.scope],
      ['last error', c.last_error],
      ['metadata', c.metadata],
      ['created', formatTime(c.created_at)],
      ['updated', formatTime(c.updated_at)],
    ]);
  },
};

const IMPORT_HELP = `Usage: tokenwarden connections import --provider <name> --owner <owner> --access-token-file <path> [options]

Stores tokens obtained from an OAuth handshake as a new connection and prints its id.
Tokens are best passed in a file or on stdin ('-'): a token on the command line is
visible to other local users and kept in the shell history.

Options:
  --file <path>                the whole request as JSON ({provider, owner, access_token,
                               refresh_token, expires_in | expires_at, scope, metadata}), or '-'
  --provider <name>            provider name
  --owner <owner>              whom the tokens belong to
  --access-token-file <path>   file (or '-') holding the access token
  --refresh-token-file <path>  file (or '-') holding the refresh token
  --access-token <token>       the access token inline (see above)
  --refresh-token <token>      the refresh token inline (see above)
  --expires-in <seconds>       access token lifetime from now
  --expires-at <time>          access token expiry, ISO 8601 (e.g. 2026-01-01T00:00:00Z)
  --scope <scope>              granted scope, space-separated
  --metadata <json>            a JSON object stored with the connection

${API_HELP}`;

const importCommand: Command = {
  name: 'connections import',
  summary: 'store tokens from an OAuth handshake as a connection',
  help: IMPORT_HELP,
  async run(argv) {
    const args = parseCommand(argv, this, {
      ...API_OPTIONS,
      file: { type: 'string' },
      provider: { type: 'string' },
      owner: { type: 'string' },
      'access-token': { type: 'string' },
      'access-token-file': { type: 'string' },
      'refresh-token': { type: 'string' },
      'refresh-token-file': { type: 'string' },
      'expires-in': { type: 'string' },
      'expires-at': { type: 'string' },
      scope: { type: 'string' },
      metadata: { type: 'string' },
    });
    if (!args) return;
    const files = ['file', 'access-token-file', 'refresh-token-file'].filter(
      (name) => args.string(name) === '-',
    );
    if (files.length > 1) throw new UsageError('only one option can read stdin (-)', this.name);

    const body: Record<string, unknown> = args.string('file')
      ? readJsonObject(args.string('file')!, 'the --file request')
      : {};
    const set = (field: string, value: unknown) => {
      if (value !== undefined) body[field] = value;
    };
    set('provider', args.string('provider'));
    set('owner', args.string('owner'));
    set(
      'access_token',
      secret(args.string('access-token'), args.string('access-token-file'), 'access', this.name),
    );
    set(
      'refresh_token',
      secret(args.string('refresh-token'), args.string('refresh-token-file'), 'refresh', this.name),
    );
    const expiresIn = args.string('expires-in');
    const expiresAt = args.string('expires-at');
    if (expiresIn !== undefined && expiresAt !== undefined) {
      throw new UsageError('give --expires-in or --expires-at, not both', this.name);
    }
    if (expiresIn !== undefined) {
      set(
        'expires_in',
        parseInteger(expiresIn, '--expires-in', { min: 0, max: 10 * 365 * 86_400 }, this.name),
      );
    }
    if (expiresAt !== undefined) set('expires_at', isoTime(expiresAt, this.name));
    set('scope', args.string('scope'));
    const metadata = args.string('metadata');
    if (metadata !== undefined) set('metadata', parseJsonObject(metadata, '--metadata', this.name));
    for (const field of ['provider', 'owner', 'access_token']) {
      if (body[field] === undefined) {
        const flag = field === 'access_token' ? 'access-token-file' : field;
        throw new UsageError(`missing --${flag} (or "${field}" in --file)`, this.name);
      }
    }

    const created = await ApiClient.fromArgs(args).post<Connection>('/v1/connections', body);
    if (args.flag('json')) {
      printJson(created);
      return;
    }
    process.stdout.write(`${created.id}\n`);
    note(
      `Imported ${created.provider}/${created.owner} as ${created.id} (version ${created.version}, access token expires ${formatTime(created.access_expires_at)}).`,
    );
  },
};

function secret(
  inline: string | undefined,
  file: string | undefined,
  kind: string,
  command: string,
): string | undefined {
  if (inline !== undefined && file !== undefined) {
    throw new UsageError(`give --${kind}-token or --${kind}-token-file, not both`, command);
  }
  return file !== undefined ? readText(file, `the ${kind} token`) : inline;
}

function isoTime(text: string, command: string): string {
  const date = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(`--expires-at '${text}' is not an ISO 8601 time`, command);
  }
  return date.toISOString();
}

const DELETE_HELP = `Usage: tokenwarden connections delete <connection id>

Deletes a connection and its tokens.

${API_HELP}`;

const deleteCommand: Command = {
  name: 'connections delete',
  summary: 'delete a connection and its tokens',
  help: DELETE_HELP,
  async run(argv) {
    const args = parseCommand(argv, this, API_OPTIONS, { min: 1, max: 1, names: 'connection id' });
    if (!args) return;
    const id = args.positionals[0]!;
    await ApiClient.fromArgs(args).delete(`/v1/connections/${encodeURIComponent(id)}`);
    if (args.flag('json')) printJson({ id, deleted: true });
    else process.stdout.write(`deleted ${id}\n`);
  },
};

export const connectionsCommand = group(
  'connections',
  'list, inspect, import and delete connections',
  [listCommand, showCommand, importCommand, deleteCommand],
);
