// `tokenwarden connections list|show|import|reauthorize|connect-link|delete`.
import { ApiClient, API_HELP, API_OPTIONS } from './api.ts';
import {
  defineCommand,
  exactlyOne,
  parseInteger,
  switches,
  valued,
  type Args,
  type OptionSpec,
} from './args.ts';
import { CliError, UsageError } from './errors.ts';
import { group } from './group.ts';
import { itemsOf, parseJsonObject, readJsonObject, readText } from './input.ts';
import { formatTime, note, printFields, printJson, printList } from './output.ts';
import { deleteOne, showOne } from './show.ts';

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

const listCommand = defineCommand({
  name: 'connections list',
  summary: 'list connections',
  help: LIST_HELP,
  options: {
    ...API_OPTIONS,
    ...valued('owner', 'provider', 'status', 'cursor'),
    ...switches('all'),
  },
  async run(args) {
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
    printList<Connection>(
      { connections: rows, next_cursor: next ?? null },
      'connections',
      [
        ['ID', (c) => c.id],
        ['PROVIDER', (c) => c.provider],
        ['OWNER', (c) => c.owner],
        ['STATUS', (c) => (c.status_reason ? `${c.status} (${c.status_reason})` : c.status)],
        ['VERSION', (c) => c.version],
        ['ACCESS EXPIRES', (c) => formatTime(c.access_expires_at)],
      ],
      {
        json: args.flag('json'),
        more: next && `More connections: --cursor ${next} (or --all)`,
      },
    );
  },
});

const SHOW_HELP = `Usage: tokenwarden connections show <connection id>

Shows one connection: status, version, expiry times and metadata (never its tokens).

${API_HELP}`;

const showCommand = defineCommand({
  name: 'connections show',
  summary: 'show one connection',
  help: SHOW_HELP,
  options: API_OPTIONS,
  positionals: exactlyOne('connection id'),
  async run(args) {
    await showOne(args, '/v1/connections', printConnection);
  },
});

function printConnection(c: Connection): void {
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
}

/** The token options `import` and `reauthorize` share, and their help lines. */
const TOKEN_OPTIONS: OptionSpec = {
  ...valued(
    'access-token',
    'access-token-file',
    'refresh-token',
    'refresh-token-file',
    'expires-in',
    'expires-at',
    'scope',
  ),
};

const TOKEN_HELP = `  --access-token-file <path>   file (or '-') holding the access token
  --refresh-token-file <path>  file (or '-') holding the refresh token
  --access-token <token>       the access token inline (see above)
  --refresh-token <token>      the refresh token inline (see above)
  --expires-in <seconds>       access token lifetime from now
  --expires-at <time>          access token expiry, ISO 8601 (e.g. 2026-01-01T00:00:00Z)
  --scope <scope>              granted scope, space-separated`;

const FILES_NOTE = `Tokens are best passed in a file or on stdin ('-'): a token on the command line is
visible to other local users and kept in the shell history.`;

const IMPORT_HELP = `Usage: tokenwarden connections import --provider <name> --owner <owner> --access-token-file <path> [options]

Stores tokens obtained from an OAuth handshake as a new connection and prints its id.
${FILES_NOTE}

Options:
  --file <path>                the whole request as JSON ({provider, owner, access_token,
                               refresh_token, expires_in | expires_at, scope, metadata}), or '-'
  --provider <name>            provider name
  --owner <owner>              whom the tokens belong to
${TOKEN_HELP}
  --metadata <json>            a JSON object stored with the connection

${API_HELP}`;

const importCommand = defineCommand({
  name: 'connections import',
  summary: 'store tokens from an OAuth handshake as a connection',
  help: IMPORT_HELP,
  options: {
    ...API_OPTIONS,
    ...TOKEN_OPTIONS,
    ...valued('file', 'provider', 'owner', 'metadata'),
  },
  async run(args) {
    const body = tokensBody(args);
    if (args.string('provider') !== undefined) body.provider = args.string('provider');
    if (args.string('owner') !== undefined) body.owner = args.string('owner');
    const metadata = args.string('metadata');
    if (metadata !== undefined) {
      body.metadata = parseJsonObject(metadata, '--metadata', args.command);
    }
    for (const field of ['provider', 'owner', 'access_token']) {
      if (body[field] === undefined) {
        const flag = field === 'access_token' ? 'access-token-file' : field;
        throw new UsageError(`missing --${flag} (or "${field}" in --file)`, args.command);
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
});

const REAUTHORIZE_HELP = `Usage: tokenwarden connections reauthorize <connection id> --access-token-file <path> [options]

Gives a connection the tokens of a new OAuth handshake: the same id, a bumped version, status
active again (a needs_reauth connection's workers get the new token at once). Prints the id.
${FILES_NOTE}

Options:
  --file <path>                the tokens as JSON ({access_token, refresh_token,
                               expires_in | expires_at, scope}), or '-'
${TOKEN_HELP}

${API_HELP}`;

const reauthorizeCommand = defineCommand({
  name: 'connections reauthorize',
  summary: "replace a connection's tokens with those of a new handshake",
  help: REAUTHORIZE_HELP,
  options: { ...API_OPTIONS, ...TOKEN_OPTIONS, file: { type: 'string' } },
  positionals: exactlyOne('connection id'),
  async run(args) {
    const id = args.positionals[0]!;
    const body = tokensBody(args);
    if (body.access_token === undefined) {
      throw new UsageError(
        'missing --access-token-file (or "access_token" in --file)',
        args.command,
      );
    }
    const after = await ApiClient.fromArgs(args).put<Connection & { recovered?: boolean }>(
      `/v1/connections/${encodeURIComponent(id)}/tokens`,
      body,
    );
    if (args.flag('json')) {
      printJson(after);
      return;
    }
    process.stdout.write(`${after.id}\n`);
    const was = after.recovered ? ', recovered from a status that was not active' : '';
    note(
      `Re-authorized ${after.id}: ${after.status}, version ${after.version}${was}; access token expires ${formatTime(after.access_expires_at)}.`,
    );
  },
});

/**
 * The tokens of a handshake from --file and the token options (options win), as the API's
 * import and re-authorization bodies take them.
 */
function tokensBody(args: Args): Record<string, unknown> {
  const command = args.command;
  const stdin = ['file', 'access-token-file', 'refresh-token-file'].filter(
    (name) => args.string(name) === '-',
  );
  if (stdin.length > 1) throw new UsageError('only one option can read stdin (-)', command);

  const body: Record<string, unknown> = args.string('file')
    ? readJsonObject(args.string('file')!, 'the --file request')
    : {};
  const set = (field: string, value: unknown) => {
    if (value !== undefined) body[field] = value;
  };
  set('access_token', secret(args, 'access'));
  set('refresh_token', secret(args, 'refresh'));
  const expiresIn = args.string('expires-in');
  const expiresAt = args.string('expires-at');
  if (expiresIn !== undefined && expiresAt !== undefined) {
    throw new UsageError('give --expires-in or --expires-at, not both', command);
  }
  if (expiresIn !== undefined) {
    const range = { min: 0, max: 10 * 365 * 86_400 };
    set('expires_in', parseInteger(expiresIn, '--expires-in', range, command));
  }
  if (expiresAt !== undefined) set('expires_at', isoTime(expiresAt, command));
  set('scope', args.string('scope'));
  return body;
}

/** --<kind>-token or --<kind>-token-file; a file must hold one token and nothing else. */
function secret(args: Args, kind: 'access' | 'refresh'): string | undefined {
  const inline = args.string(`${kind}-token`);
  const file = args.string(`${kind}-token-file`);
  if (inline !== undefined && file !== undefined) {
    throw new UsageError(`give --${kind}-token or --${kind}-token-file, not both`, args.command);
  }
  if (file === undefined) return inline;
  const token = readText(file, `the ${kind} token`);
  const source = file === '-' ? 'stdin' : file;
  // Caught here, not by the API, to name the file; never quoting it: it is a token.
  if (token.trim() === '') throw new CliError(`the ${kind} token file ${source} is empty`);
  if (/\s/.test(token)) {
    throw new CliError(
      `the ${kind} token file ${source} holds more than one word: it must hold the token alone`,
    );
  }
  return token;
}

function isoTime(text: string, command: string): string {
  const date = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(`--expires-at '${text}' is not an ISO 8601 time`, command);
  }
  return date.toISOString();
}

const CONNECT_LINK_HELP = `Usage: tokenwarden connections connect-link --provider <name> --owner <owner> [options]

Starts a connect session (the OAuth handshake, run by Tokenwarden with state and PKCE) and
prints the provider's authorization URL. Opened in a browser within 10 minutes, it ends with
a connection (a new one, or --connection re-authorized with its id kept), and the browser is
sent to --redirect-uri with connection_id= (or error=). The server needs the connect flow on
('tokenwarden serve --public-url ...') and the provider an --authorize-url.

Options:
  --provider <name>        provider name
  --owner <owner>          whom the connection will belong to
  --redirect-uri <url>     where the browser goes at the end (default: this server's
                           /healthz, whose address then shows connection_id=)
  --scope <scope>          scopes to ask for, space-separated (default: the provider's)
  --connection <id>        re-authorize this connection instead of creating one

${API_HELP}`;

const connectLinkCommand = defineCommand({
  name: 'connections connect-link',
  summary: 'start a connect session and print the URL to authorize at',
  help: CONNECT_LINK_HELP,
  options: {
    ...API_OPTIONS,
    ...valued('provider', 'owner', 'redirect-uri', 'scope', 'connection'),
  },
  async run(args) {
    const provider = args.required('provider');
    const owner = args.required('owner');
    const scope = args.string('scope');
    const api = ApiClient.fromArgs(args);
    const redirectUri = args.string('redirect-uri') ?? `${api.url}/healthz`;
    const session = await api.post<{ authorize_url: string; expires_at: string }>(
      '/v1/connect/sessions',
      {
        provider,
        owner,
        redirect_uri: redirectUri,
        ...(scope === undefined ? {} : { scopes: scope.split(' ').filter(Boolean) }),
        ...(args.string('connection') === undefined
          ? {}
          : { connection_id: args.string('connection') }),
      },
    );
    if (args.flag('json')) {
      printJson(session);
      return;
    }
    process.stdout.write(`${session.authorize_url}\n`);
    note(
      `Open it in a browser before ${formatTime(session.expires_at)}; it comes back to ${redirectUri} with connection_id=.`,
    );
  },
});

const DELETE_HELP = `Usage: tokenwarden connections delete <connection id>

Deletes a connection and its tokens.

${API_HELP}`;

const deleteCommand = defineCommand({
  name: 'connections delete',
  summary: 'delete a connection and its tokens',
  help: DELETE_HELP,
  options: API_OPTIONS,
  positionals: exactlyOne('connection id'),
  async run(args) {
    await deleteOne(args, '/v1/connections', 'deleted');
  },
});

export const connectionsCommand = group(
  'connections',
  'list, inspect, import, re-authorize and delete connections',
  [listCommand, showCommand, importCommand, reauthorizeCommand, connectLinkCommand, deleteCommand],
);
