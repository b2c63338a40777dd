// `tokenwarden webhooks add|list|show|remove|rotate-secret|deliveries|redeliver`: where lifecycle
// events (connection.needs_reauth, ...) are sent, and how their deliveries went.
import { LIFECYCLE_EVENT_TYPES } from '@tokenwarden/core';
import { ApiClient, API_HELP, API_OPTIONS } from './api.ts';
import { defineCommand, exactlyOne, parseInteger } from './args.ts';
import { UsageError } from './errors.ts';
import { group } from './group.ts';
import { formatTime, note, printFields, printJson } from './output.ts';
import { deleteOne, showList, showOne } from './show.ts';

interface Endpoint {
  id: string;
  url: string;
  events: string[] | null;
  description: string | null;
  previous_secret_until: string | null;
  created_at: string;
  secret?: string;
}

interface Delivery {
  id: string;
  event_type: string;
  connection_id: string;
  status: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
}

const ADD_HELP = `Usage: tokenwarden webhooks add <https url> [--event <type> ...] [--description <text>]

Adds a webhook endpoint (admin key) and prints its signing secret once (whsec_...).
Receivers verify each delivery with it (Standard Webhooks; @tokenwarden/client's
verifyWebhook).

The URL is where events are POSTed: https on a public address (the server's
--allow-private-webhooks allows private addresses and plain http).

Options:
  --event <type>       an event type to send, repeatable; default all of
                       ${LIFECYCLE_EVENT_TYPES.join(', ')}
  --description <text> for people: whose receiver this is

${API_HELP}`;

const addCommand = defineCommand({
  name: 'webhooks add',
  summary: 'add a webhook endpoint and print its signing secret once',
  help: ADD_HELP,
  options: {
    ...API_OPTIONS,
    event: { type: 'string', multiple: true },
    description: { type: 'string' },
  },
  positionals: exactlyOne('url'),
  async run(args) {
    const events = args.list('event');
    const unknown = events.find((e) => !(LIFECYCLE_EVENT_TYPES as readonly string[]).includes(e));
    if (unknown !== undefined) {
      throw new UsageError(
        `unknown event '${unknown}'; events are ${LIFECYCLE_EVENT_TYPES.join(', ')}`,
        args.command,
      );
    }
    const description = args.string('description');
    const created = await ApiClient.fromArgs(args).post<Endpoint>('/v1/webhooks', {
      url: args.positionals[0]!,
      ...(events.length > 0 && { events }),
      ...(description !== undefined && { description }),
    });
    if (args.flag('json')) return printJson(created);
    printFields([
      ['id', created.id],
      ['url', created.url],
      ['events', created.events?.join(' ') ?? 'all'],
      ['secret', created.secret],
    ]);
    note('The secret is shown only this once; give it to the receiver now.');
  },
});

const LIST_HELP = `Usage: tokenwarden webhooks list

Lists webhook endpoints (admin key); never their secrets.

${API_HELP}`;

const listCommand = defineCommand({
  name: 'webhooks list',
  summary: 'list webhook endpoints',
  help: LIST_HELP,
  options: API_OPTIONS,
  async run(args) {
    await showList<Endpoint>(args, '/v1/webhooks', 'webhooks', [
      ['ID', (e) => e.id],
      ['URL', (e) => e.url],
      ['EVENTS', (e) => e.events?.join(',') ?? 'all'],
      ['CREATED', (e) => formatTime(e.created_at)],
    ]);
  },
});

const SHOW_HELP = `Usage: tokenwarden webhooks show <webhook id>

Shows one webhook endpoint (admin key).

${API_HELP}`;

const showCommand = defineCommand({
  name: 'webhooks show',
  summary: 'show one webhook endpoint',
  help: SHOW_HELP,
  options: API_OPTIONS,
  positionals: exactlyOne('webhook id'),
  async run(args) {
    await showOne<Endpoint>(args, '/v1/webhooks', (e) =>
      printFields([
        ['id', e.id],
        ['url', e.url],
        ['events', e.events?.join(' ') ?? 'all'],
        ['description', e.description ?? ''],
        ['old secret signs until', formatTime(e.previous_secret_until)],
        ['created', formatTime(e.created_at)],
      ]),
    );
  },
});

const REMOVE_HELP = `Usage: tokenwarden webhooks remove <webhook id>

Removes a webhook endpoint (admin key) and its pending deliveries.

${API_HELP}`;

const removeCommand = defineCommand({
  name: 'webhooks remove',
  summary: 'remove a webhook endpoint',
  help: REMOVE_HELP,
  options: API_OPTIONS,
  positionals: exactlyOne('webhook id'),
  async run(args) {
    await deleteOne(args, '/v1/webhooks', 'deleted');
  },
});

const ROTATE_HELP = `Usage: tokenwarden webhooks rotate-secret <webhook id> [--overlap <seconds>]

Gives the endpoint a new signing secret, printed once (admin key). The old one keeps
signing too for the overlap (default the server's, 24 h): deliveries then carry both
signatures, so the receiver can switch to the new secret without losing one.

Options:
  --overlap <s>   seconds the old secret keeps signing (0 ends it at once)

${API_HELP}`;

const rotateCommand = defineCommand({
  name: 'webhooks rotate-secret',
  summary: "rotate an endpoint's signing secret",
  help: ROTATE_HELP,
  options: { ...API_OPTIONS, overlap: { type: 'string' } },
  positionals: exactlyOne('webhook id'),
  async run(args) {
    const id = args.positionals[0]!;
    const overlap = args.string('overlap');
    const rotated = await ApiClient.fromArgs(args).post<Endpoint>(
      `/v1/webhooks/${encodeURIComponent(id)}/secret`,
      overlap === undefined
        ? {}
        : {
            overlap_seconds: parseInteger(
              overlap,
              '--overlap',
              { min: 0, max: 30 * 24 * 3600 },
              args.command,
            ),
          },
    );
    if (args.flag('json')) return printJson(rotated);
    printFields([
      ['id', rotated.id],
      ['secret', rotated.secret],
      ['old secret signs until', formatTime(rotated.previous_secret_until)],
    ]);
    note('The new secret is shown only this once.');
  },
});

const DELIVERIES_HELP = `Usage: tokenwarden webhooks deliveries <webhook id>

An endpoint's delivery log, newest first (admin key): status, attempts, the receiver's
last HTTP status, why the last attempt failed, and the next attempt.

${API_HELP}`;

const deliveriesCommand = defineCommand({
  name: 'webhooks deliveries',
  summary: "show an endpoint's delivery log",
  help: DELIVERIES_HELP,
  options: API_OPTIONS,
  positionals: exactlyOne('webhook id'),
  async run(args) {
    const id = encodeURIComponent(args.positionals[0]!);
    await showList<Delivery>(args, `/v1/webhooks/${id}/deliveries`, 'deliveries', [
      ['ID', (d) => d.id],
      ['EVENT', (d) => d.event_type],
      ['CONNECTION', (d) => d.connection_id],
      ['STATUS', (d) => d.status],
      ['ATTEMPTS', (d) => String(d.attempts)],
      ['LAST', (d) => [d.last_status ?? '', d.last_error ?? ''].join(' ').trim()],
      ['NEXT', (d) => formatTime(d.next_attempt_at)],
    ]);
  },
});

const REDELIVER_HELP = `Usage: tokenwarden webhooks redeliver <webhook id> <delivery id>

Sends a delivery again from now, with a fresh retry window (admin key): after a receiver
was fixed, for a delivery marked failed.

${API_HELP}`;

const redeliverCommand = defineCommand({
  name: 'webhooks redeliver',
  summary: 'send a delivery again',
  help: REDELIVER_HELP,
  options: API_OPTIONS,
  positionals: { min: 2, max: 2, names: 'webhook id> <delivery id' },
  async run(args) {
    const [id, delivery] = args.positionals.map(encodeURIComponent) as [string, string];
    const answer = await ApiClient.fromArgs(args).post<Delivery>(
      `/v1/webhooks/${id}/deliveries/${delivery}/redeliver`,
      {},
    );
    if (args.flag('json')) return printJson(answer);
    process.stdout.write(`redelivering ${answer.id}\n`);
  },
});

export const webhooksCommand = group('webhooks', 'manage webhook endpoints and deliveries', [
  addCommand,
  listCommand,
  showCommand,
  removeCommand,
  rotateCommand,
  deliveriesCommand,
  redeliverCommand,
]);
