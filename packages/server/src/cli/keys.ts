// `tokenwarden keys add|rotate`: key rotation works on the database directly (no server), so
// that it also works while no server is up and needs no admin key.
import { resolve } from 'node:path';
import {
  embeddedKeyFile,
  EnvelopeKeySource,
  KEY_HOLDER_MAX_AGE_MS,
  GENERATE_KEY_COMMAND,
  loadKeyRing,
  rotateKeys,
  writeKeyFile,
  type KyselyStore,
  type Store,
} from '@tokenwarden/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { rewrapCommand } from './keys-rewrap.ts';
import { defineCommand, switches, valued } from './args.ts';
import { openDatabase, DB_HELP } from './database.ts';
import { CliError } from './errors.ts';
import { note, printJson } from './output.ts';
import { Progress } from './progress.ts';
import { group } from './group.ts';

const ADD_HELP = `Usage: tokenwarden keys add [--id <key id>]

Puts a newly generated key at the front of the key file (TOKENWARDEN_KEY_FILE, default
tokenwarden.keys beside the SQLite file TOKENWARDEN_DB, itself ./tokenwarden.sqlite by
default): new secrets are sealed with it, the old keys still decrypt. Running servers
read it at their next key heartbeat (10 s) or at once on SIGHUP; then run
'tokenwarden keys rotate', which waits until every one of them holds it.
With TOKENWARDEN_KEYS, generate a key with
  ${GENERATE_KEY_COMMAND}
and put it first in TOKENWARDEN_KEYS yourself.

Options:
  --id <key id>  id of the new key (default k<yyyymmdd>-<random>)
  --json         print {"active_key_id", "key_ids"}`;

const addCommand = defineCommand({
  name: 'keys add',
  summary: 'put a new active key at the front of the key file',
  help: ADD_HELP,
  options: { id: { type: 'string' }, json: { type: 'boolean' } },
  async run(args) {
    if (process.env.TOKENWARDEN_KEYS) {
      throw new CliError(
        'the keys come from TOKENWARDEN_KEYS, not a file: generate a key and put it first in TOKENWARDEN_KEYS yourself (see --help)',
      );
    }
    const path = resolve(
      process.env.TOKENWARDEN_KEY_FILE ||
        embeddedKeyFile(process.env.TOKENWARDEN_DB || 'tokenwarden.sqlite'),
    );
    const current = loadKeyRing({ keyFile: path, env: {}, warn });
    const next = current.withNewActiveKey(args.string('id'));
    writeKeyFile(path, next, {
      replace: true,
      comment: `Updated ${new Date().toISOString()} by tokenwarden keys add.`,
    });
    if (args.flag('json')) {
      printJson({ active_key_id: next.activeKeyId, key_ids: next.keyIds });
      return;
    }
    process.stdout.write(
      `added key ${next.activeKeyId} to ${path} (keys: ${next.keyIds.join(', ')})\n`,
    );
    note(
      "Running servers read the new key within 10 s (at once on SIGHUP); then run 'tokenwarden keys rotate'.",
    );
  },
});

const ROTATE_HELP = `Usage: tokenwarden keys rotate [--db <path|url>] [--batch-size 500]

Re-encrypts every stored token and provider client secret that is not yet under the
active key (the first one in TOKENWARDEN_KEYS or the key file), in batches, while servers
keep running. It starts only once every live server holds that key (each says which it
holds every 10 s, and at once on SIGHUP); it waits up to --wait seconds, then refuses,
naming the servers that lack it. With TOKENWARDEN_KMS_KEY_ID it first creates a new data
key, waits for every server to load it, then makes it active. Run it again after a crash:
it resumes. Once it reports 0 skipped, the old keys can leave the ring.

Options:
${DB_HELP}
  --batch-size <n> credentials per batch (default 500)
  --wait <s>       how long to wait for every server to hold the new key (default 30)
  --json           print {"active_key_id", "resealed", "skipped", "provider_secrets"}`;

const rotateCommand = defineCommand({
  name: 'keys rotate',
  summary: 're-encrypt stored tokens under the active key',
  help: ROTATE_HELP,
  options: {
    ...valued('db', 'batch-size', 'wait'),
    ...switches('json'),
  },
  async run(args) {
    const batchSize = args.int('batch-size', { min: 1, max: 100_000 }) ?? 500;
    const waitSeconds = args.int('wait', { min: 0, max: 3600 }) ?? 30;
    const { store, keyRing, location, source } = await openDatabase({
      db: args.string('db'),
      create: false,
      warn,
    });
    let progress: Progress | undefined;
    try {
      if (source instanceof EnvelopeKeySource) {
        // A new data key every replica loads first; it seals nothing until all of them hold it.
        const pending = await source.pendingKey();
        keyRing.adopt(await source.load());
        await untilEveryProcessHolds(store, pending, waitSeconds);
        await store.keys.activateDataKey(pending);
        keyRing.adopt(await source.load());
        note(`data key ${pending} is active`);
      } else {
        await untilEveryProcessHolds(store, keyRing.activeKeyId, waitSeconds);
      }
      const total = await countNotUnderKey(store, keyRing.activeKeyId);
      note(`${location}: ${total} credentials to re-encrypt under key ${keyRing.activeKeyId}`);
      progress = new Progress('re-encrypting', total);
      let resealed = 0;
      const result = await rotateKeys({
        store,
        service: store.service,
        webhooks: store.webhooks,
        keyRing,
        batchSize,
        onProgress: (p) => {
          resealed = p.resealed;
          progress?.update(p.resealed + p.skipped);
        },
      });
      progress.finish(Math.max(resealed, result.resealed + result.skipped));
      if (args.flag('json')) {
        printJson({
          active_key_id: keyRing.activeKeyId,
          resealed: result.resealed,
          skipped: result.skipped,
          provider_secrets: result.providerSecrets ?? null,
          webhook_secrets: result.webhookSecrets ?? null,
        });
      } else {
        const providers = result.providerSecrets;
        process.stdout.write(
          `re-encrypted ${result.resealed} credentials under key ${keyRing.activeKeyId}; ${result.skipped} skipped\n` +
            (providers
              ? `re-encrypted ${providers.resealed} provider client secrets; ${providers.skipped} skipped\n`
              : '') +
            (result.webhookSecrets &&
            result.webhookSecrets.resealed + result.webhookSecrets.skipped > 0
              ? `re-encrypted ${result.webhookSecrets.resealed} webhook signing secrets; ${result.webhookSecrets.skipped} skipped\n`
              : ''),
        );
      }
      const skippedSecrets =
        (result.providerSecrets?.skipped ?? 0) + (result.webhookSecrets?.skipped ?? 0);
      if (result.skipped > 0 || skippedSecrets > 0) {
        note('Some secrets were rewritten under an old key meanwhile: run keys rotate again.');
        process.exitCode = 1;
      }
    } catch (error) {
      progress?.abort();
      throw error;
    } finally {
      await store.close();
    }
  },
});

export const keysCommand = group('keys', 'add an encryption key; re-encrypt or rewrap', [
  addCommand,
  rotateCommand,
  rewrapCommand,
]);

/**
 * Waits until every process seen in the last heartbeats holds `keyId`; refuses to go on
 * otherwise: what it re-encrypts would answer `decrypt_failed` on a process without the key.
 */
async function untilEveryProcessHolds(store: KeyStoreHolder, keyId: string, waitSeconds: number) {
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    const holders = await store.keys.listKeyHolders(KEY_HOLDER_MAX_AGE_MS);
    const lacking = holders.filter((holder) => !holder.keyIds.includes(keyId));
    if (lacking.length === 0) return;
    if (Date.now() >= deadline) {
      throw new CliError(
        `${lacking.length} running Tokenwarden process(es) do not hold key ${keyId} yet ` +
          `(${lacking.map((holder) => holder.processId).join(', ')}): nothing was re-encrypted. ` +
          'Give them the new key (send SIGHUP after changing the key file or TOKENWARDEN_KEYS ' +
          'on their host), then run keys rotate again.',
      );
    }
    await sleep(1_000);
  }
}

type KeyStoreHolder = Pick<KyselyStore, 'keys'>;

/** The bar's denominator: one read-only pass over what the rotation will visit. */
async function countNotUnderKey(store: Store, keyId: string): Promise<number> {
  let count = 0;
  let afterId: string | null = null;
  for (;;) {
    const page = await store.listNotUnderKey(keyId, afterId, 5000);
    if (page.length === 0) return count;
    count += page.length;
    afterId = page[page.length - 1]!.id;
  }
}

function warn(message: string): void {
  note(`warning: ${message.replace(/\s*\n\s*/g, ' ')}`);
}

/** Replaces the key file atomically with mode 0600, so a crash leaves the old or the new ring. */
