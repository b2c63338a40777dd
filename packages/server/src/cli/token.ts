// `tokenwarden token <id>`: a valid access token, for scripts: `curl -H "Authorization: Bearer
// $(tokenwarden token conn_...)"`. Showing the token is this command's purpose.
import { ApiClient, API_OPTIONS, SERVICE_API_HELP } from './api.ts';
import { defineCommand, exactlyOne } from './args.ts';
import { printJson } from './output.ts';

const HELP = `Usage: tokenwarden token <connection id> [--min-ttl <seconds>]

Prints a valid access token for the connection (refreshed first if it expires within
--min-ttl), and nothing else, so that it can be used in a pipe. --json prints
{access_token, token_type, expires_at, version}.

Options:
  --min-ttl <seconds>  refresh unless the token stays valid at least this long

${SERVICE_API_HELP}`;

export const tokenCommand = defineCommand({
  name: 'token',
  summary: 'print a valid access token for a connection',
  help: HELP,
  options: { ...API_OPTIONS, 'min-ttl': { type: 'string' } },
  positionals: exactlyOne('connection id'),
  async run(args) {
    const id = args.positionals[0]!;
    const minTtl = args.int('min-ttl', { min: 0, max: 86_400 });
    const token = await ApiClient.fromArgs(args, 'service').post<{ access_token: string }>(
      `/v1/connections/${encodeURIComponent(id)}/token`,
      minTtl === undefined ? {} : { min_ttl: minTtl },
    );
    if (args.flag('json')) printJson(token);
    else process.stdout.write(`${token.access_token}\n`);
  },
});
