// `tokenwarden clients create|list|revoke`: service clients, their grants and API keys.
import { ACTIONS } from '../routes/clients.ts';
import { ApiClient, API_HELP, API_OPTIONS } from './api.ts';
import { parseCommand, type Command } from './args.ts';
import { UsageError } from './errors.ts';
import { group } from './group.ts';
import { itemsOf } from './input.ts';
import { formatTime, note, printFields, printJson, printTable } from './output.ts';

interface Grant {
  owner: string;
  provider: string;
  actions: string[];
}

interface Client {
  id: string;
  name: string;
  grants?: Grant[];
  created_at?: unknown;
  revoked_at?: unknown;
  api_key?: string;
}

const CREATE_HELP = `Usage: tokenwarden clients create --name <name> --grant <provider>:<owner>:<actions> ...

Creates a service client (admin key) and prints its API key once.

Options:
  --name <name>     a name for people: which service or worker this is (required)
  --grant <grant>   <provider>:<owner>:<actions>, repeatable (at least one). '*' matches
                    every provider or owner; actions are comma-separated, from
                    ${ACTIONS.join(', ')}.
                    e.g. --grant 'slack:*:token.read' --grant 'google:user-42:token.read,connections.read'

${API_HELP}`;

const createCommand: Command = {
  name: 'clients create',
  summary: 'create a service client and print its API key once',
  help: CREATE_HELP,
  async run(argv) {
    const args = parseCommand(argv, this, {
      ...API_OPTIONS,
      name: { type: 'string' },
      grant: { type: 'string', multiple: true },
    });
    if (!args) return;
    const name = args.required('name');
    const grants = args.list('grant').map((text) => parseGrant(text, this.name));
    if (grants.length === 0) throw new UsageError('give at least one --grant', this.name);
    const api = ApiClient.fromArgs(args);
    const created = await api.post<Client>('/v1/clients', { name, grants });
    if (args.flag('json')) {
      printJson(created);
      return;
    }
    printFields([
      ['id', created.id],
      ['name', created.name],
      ['api key', created.api_key],
    ]);
    note('The API key is shown only this once; store it now (the server keeps only its hash).');
  },
};

/** `<provider>:<owner>:<actions>`: provider names and actions have no ':', owners may. */
export function parseGrant(text: string, command: string): Grant {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first === -1 || last === first) {
    throw new UsageError(`--grant '${text}' must look like <provider>:<owner>:<actions>`, command);
  }
  const provider = text.slice(0, first);
  const owner = text.slice(first + 1, last);
  const actions = text
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (provider === '' || owner === '' || actions.length === 0) {
    throw new UsageError(
      `--grant '${text}' needs a provider, an owner and at least one action`,
      command,
    );
  }
  const unknown = actions.find((action) => !(ACTIONS as readonly string[]).includes(action));
  if (unknown !== undefined) {
    throw new UsageError(
      `--grant '${text}': unknown action '${unknown}'; actions are ${ACTIONS.join(', ')}`,
      command,
    );
  }
  return { provider, owner, actions };
}

function formatGrants(grants: Grant[] | undefined): string {
  return (grants ?? []).map((g) => `${g.provider}:${g.owner}:${g.actions.join(',')}`).join(' ');
}

const LIST_HELP = `Usage: tokenwarden clients list

Lists service clients (admin key), revoked ones included.

${API_HELP}`;

const listCommand: Command = {
  name: 'clients list',
  summary: 'list service clients',
  help: LIST_HELP,
  async run(argv) {
    const args = parseCommand(argv, this, API_OPTIONS);
    if (!args) return;
    const body = await ApiClient.fromArgs(args).get<unknown>('/v1/clients');
    if (args.flag('json')) {
      printJson(body);
      return;
    }
    printTable(itemsOf<Client>(body, 'clients'), [
      ['ID', (c) => c.id],
      ['NAME', (c) => c.name],
      ['CREATED', (c) => formatTime(c.created_at)],
      ['REVOKED', (c) => formatTime(c.revoked_at)],
      ['GRANTS', (c) => formatGrants(c.grants)],
    ]);
  },
};

const REVOKE_HELP = `Usage: tokenwarden clients revoke <client id>

Revokes a service client (admin key): its API key is refused from the next request on.

${API_HELP}`;

const revokeCommand: Command = {
  name: 'clients revoke',
  summary: 'revoke a service client',
  help: REVOKE_HELP,
  async run(argv) {
    const args = parseCommand(argv, this, API_OPTIONS, { min: 1, max: 1, names: 'client id' });
    if (!args) return;
    const id = args.positionals[0]!;
    await ApiClient.fromArgs(args).delete(`/v1/clients/${encodeURIComponent(id)}`);
    if (args.flag('json')) printJson({ id, revoked: true });
    else process.stdout.write(`revoked ${id}\n`);
  },
};

export const clientsCommand = group('clients', 'manage service clients and their API keys', [
  createCommand,
  listCommand,
  revokeCommand,
]);
