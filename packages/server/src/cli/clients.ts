// `tokenwarden clients create|list|revoke`: service clients, their grants and API keys.
import { ACTIONS } from '../routes/clients.ts';
import { ApiClient, API_HELP, API_OPTIONS } from './api.ts';
import { defineCommand, exactlyOne } from './args.ts';
import { UsageError } from './errors.ts';
import { group } from './group.ts';

import { formatTime, note, printFields, printJson } from './output.ts';
import { deleteOne, showList } from './show.ts';

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
  --cert-sha256 <fingerprint>
                    bind the client to this TLS client certificate (serve --tls-client-ca):
                    its SHA-256 fingerprint, AB:CD:... as 'openssl x509 -fingerprint -sha256'
                    prints it; the key alone is then refused
  --cert-subject-cn <name>
                    or bind it to any certificate from the client CA with this common name

${API_HELP}`;

const createCommand = defineCommand({
  name: 'clients create',
  summary: 'create a service client and print its API key once',
  help: CREATE_HELP,
  options: {
    ...API_OPTIONS,
    name: { type: 'string' },
    grant: { type: 'string', multiple: true },
    'cert-sha256': { type: 'string' },
    'cert-subject-cn': { type: 'string' },
  },
  async run(args) {
    const name = args.required('name');
    const grants = args.list('grant').map((text) => parseGrant(text, args.command));
    if (grants.length === 0) throw new UsageError('give at least one --grant', args.command);
    const sha256 = args.string('cert-sha256');
    const subjectCn = args.string('cert-subject-cn');
    if (sha256 !== undefined && subjectCn !== undefined) {
      throw new UsageError('give --cert-sha256 or --cert-subject-cn, not both', args.command);
    }
    const certificate =
      sha256 !== undefined
        ? { sha256: sha256.toUpperCase() }
        : subjectCn !== undefined
          ? { subject_cn: subjectCn }
          : undefined;
    const api = ApiClient.fromArgs(args);
    const created = await api.post<Client>('/v1/clients', { name, grants, certificate });
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
});

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

const listCommand = defineCommand({
  name: 'clients list',
  summary: 'list service clients',
  help: LIST_HELP,
  options: API_OPTIONS,
  async run(args) {
    await showList<Client>(args, '/v1/clients', 'clients', [
      ['ID', (c) => c.id],
      ['NAME', (c) => c.name],
      ['CREATED', (c) => formatTime(c.created_at)],
      ['REVOKED', (c) => formatTime(c.revoked_at)],
      ['GRANTS', (c) => formatGrants(c.grants)],
    ]);
  },
});

const REVOKE_HELP = `Usage: tokenwarden clients revoke <client id>

Revokes a service client (admin key): its API key is refused from the next request on.

${API_HELP}`;

const revokeCommand = defineCommand({
  name: 'clients revoke',
  summary: 'revoke a service client',
  help: REVOKE_HELP,
  options: API_OPTIONS,
  positionals: exactlyOne('client id'),
  async run(args) {
    await deleteOne(args, '/v1/clients', 'revoked');
  },
});

export const clientsCommand = group('clients', 'manage service clients and their API keys', [
  createCommand,
  listCommand,
  revokeCommand,
]);
