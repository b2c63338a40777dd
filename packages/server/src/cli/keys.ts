// `tokenwarden keys add|rotate`: key rotation works on the database directly (no server), so
// that it also works while no server is up and needs no admin key.
import { resolve } from 'node:path';
import {
  embeddedKeyFile,
  GENERATE_KEY_COMMAND,
  loadKeyRing,
  rotateKeys,
  writeKeyFile,
  type Store,
} from '@tokenwarden/core';
import { defineCommand, switches, valued } from './args.ts';
import { openDatabase, DB_HELP } from './database.ts';
import { CliError } from './errors.ts';
import { note, printJson } from './output.ts';
import { Progress } from './progress.ts';
import { group } from './group.ts';

const ADD_HELP = `Usage: tokenwarden keys add [--id <key id>]

Puts a newly generated key at the front of the key file (TOKENWARDEN_KEY_FILE, default
tokenwarden.keys beside the SQLite file TOKENWARDEN_DB, itself ./tokenwarden.sqlite by
default): new secrets are sealed with it, the old keys still decrypt. Restart every
Tokenwarden process so it reads the new ring, then run 'tokenwarden keys rotate'.
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
      "Restart every Tokenwarden process so that it reads the new key, then run 'tokenwarden keys rotate'.",
    );
  },
});

const ROTATE_HELP = `Usage: tokenwarden keys rotate [--db <path|url>] [--batch-size 500]

Re-encrypts every stored token and provider client secret that is not yet under the
active key (the first one in TOKENWARDEN_KEYS or the key file), in batches, while servers
keep running. Every running process must already hold the new key ring, or it cannot read
what was re-encrypted. Once it reports 0 skipped, the old keys can leave the ring.

Options:
${DB_HELP}
  --batch-size <n> credentials per batch (default 500)
  --json           print {"active_key_id", "resealed", "skipped", "provider_secrets"}`;

const rotateCommand = defineCommand({
  name: 'keys rotate',
  summary: 're-encrypt stored tokens under the active key',
  help: ROTATE_HELP,
  options: {
    ...valued('db', 'batch-size'),
    ...switches('json'),
  },
  async run(args) {
    const batchSize = args.int('batch-size', { min: 1, max: 100_000 }) ?? 500;
    const { store, keyRing, location } = await openDatabase({
      db: args.string('db'),
      create: false,
      warn,
    });
    let progress: Progress | undefined;
    try {
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

export const keysCommand = group('keys', 'add an encryption key; re-encrypt under it', [
  addCommand,
  rotateCommand,
]);

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
