// `tokenwarden presets`: the provider catalog this CLI was built with, one line each, so that
// `providers put --preset` need not be guessed. No server and no key needed.
import { presetListings } from '../routes/provider-schemas.ts';
import { defineCommand } from './args.ts';
import { printJson, printTable } from './output.ts';

const HELP = `Usage: tokenwarden presets [--json]

Lists the presets 'tokenwarden providers put --preset <name>' accepts: each with its token
endpoint and the --param values its URLs need ('<name>' when there is no default). 'oidc' is any
OpenID Connect issuer, discovered from --issuer. --json prints the full entries, notes included,
as GET /v1/presets answers them.`;

export const presetsCommand = defineCommand({
  name: 'presets',
  summary: 'list the provider presets',
  help: HELP,
  options: { json: { type: 'boolean' } },
  async run(args) {
    const presets = presetListings();
    if (args.flag('json')) {
      printJson({ presets });
      return;
    }
    printTable(presets, [
      ['NAME', (p) => p.name],
      ['TOKEN URL', (p) => p.token_url ?? 'discovered from --issuer'],
      [
        'PARAMS',
        (p) =>
          Object.entries(p.params)
            .map(([key, fallback]) => `${key}=${fallback ?? `<${key}>`}`)
            .join(' '),
      ],
    ]);
  },
});
