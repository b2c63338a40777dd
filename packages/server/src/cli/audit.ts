// `tokenwarden audit`: who asked for which connection's token, and what happened.
import { ApiClient, API_HELP, API_OPTIONS } from './api.ts';
import { defineCommand, valued } from './args.ts';
import { UsageError } from './errors.ts';

import { formatTime, printList } from './output.ts';

interface AuditRow {
  seq?: number;
  at?: unknown;
  actor?: string;
  action?: string;
  connection_id?: string | null;
  owner?: string | null;
  provider?: string | null;
  outcome?: string;
  detail?: unknown;
  request_id?: string;
}

const HELP = `Usage: tokenwarden audit [--connection <id>] [--client <id>] [--since <time>]

Shows the audit log, newest first (admin key).

Options:
  --connection <id>  only events about this connection
  --client <id>      only events by this service client ('admin' for the admin key)
  --since <time>     only events at or after this time: ISO 8601, or a duration ago
                     such as 30m, 12h, 7d
  --limit <n>        events per page, 1-200 (default 100)
  --cursor <cursor>  the next page, as printed after the previous one

${API_HELP}`;

export const auditCommand = defineCommand({
  name: 'audit',
  summary: 'show the audit log',
  help: HELP,
  options: {
    ...API_OPTIONS,
    ...valued('connection', 'client', 'since', 'limit', 'cursor'),
  },
  async run(args) {
    const since = args.string('since');
    const limit = args.int('limit', { min: 1, max: 200 });
    const body = await ApiClient.fromArgs(args).get<{ next_cursor?: string | null }>('/v1/audit', {
      connection: args.string('connection'),
      client: args.string('client'),
      since: since === undefined ? undefined : parseSince(since, args.command),
      limit: limit === undefined ? undefined : String(limit),
      cursor: args.string('cursor'),
    });
    printList<AuditRow>(
      body,
      'events',
      [
        ['TIME', (e) => formatTime(e.at)],
        ['ACTOR', (e) => e.actor],
        ['ACTION', (e) => e.action],
        ['CONNECTION', (e) => e.connection_id],
        ['OUTCOME', (e) => e.outcome],
        ['DETAIL', (e) => e.detail],
      ],
      {
        json: args.flag('json'),
        more: body?.next_cursor && `Older events: --cursor ${body.next_cursor}`,
      },
    );
  },
});

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An ISO time, or `<n><s|m|h|d>` ago, as an ISO string. */
export function parseSince(text: string, command: string, now = Date.now()): string {
  const ago = /^(\d+)([smhd])$/.exec(text.trim());
  if (ago) return new Date(now - Number(ago[1]) * UNITS[ago[2]!]!).toISOString();
  const date = new Date(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(date.getTime())) return date.toISOString();
  throw new UsageError(
    `--since '${text}' is neither an ISO 8601 time nor a duration like 12h`,
    command,
  );
}
