// `tokenwarden keys rewrap --kms-key <id>`: moves every data key under another KMS key. Only the
// wrapping of each data key changes (one `data_keys` row at a time), never a credential, so
// servers keep running and a rewrap stopped halfway is run again.
import { EnvelopeKeySource } from '@tokenwarden/core';
import { defineCommand, switches, valued } from './args.ts';
import { openDatabase, DB_HELP } from './database.ts';
import { CliError } from './errors.ts';
import { note, printJson } from './output.ts';
import { Progress } from './progress.ts';

const HELP = `Usage: tokenwarden keys rewrap --kms-key <KMS key id> [--db <path|url>]

Wraps every data key again under another KMS key (TOKENWARDEN_KMS_KEY_ID names the current
one, which must still unwrap them). No credential is re-encrypted: servers keep running,
and a rewrap stopped halfway is simply run again. Afterwards set TOKENWARDEN_KMS_KEY_ID to
the new key on every server; the old KMS key is no longer needed.

Options:
  --kms-key <id>   the KMS key to move the data keys under (ARN, alias or key id)
${DB_HELP}
  --json           print {"kms_key_id", "rewrapped", "already"}`;

export const rewrapCommand = defineCommand({
  name: 'keys rewrap',
  summary: 'move every data key under another KMS key',
  help: HELP,
  options: { ...valued('db', 'kms-key'), ...switches('json') },
  async run(args) {
    const target = args.string('kms-key');
    if (!target) throw new CliError('keys rewrap needs --kms-key <KMS key id>');
    if (!process.env.TOKENWARDEN_KMS_KEY_ID) {
      throw new CliError(
        'keys rewrap needs TOKENWARDEN_KMS_KEY_ID: the data keys of a key file are not wrapped',
      );
    }
    const { store, source, location } = await openDatabase({
      db: args.string('db'),
      create: false,
      warn: (message) => note(`warning: ${message}`),
    });
    let progress: Progress | undefined;
    try {
      const envelope = source as EnvelopeKeySource;
      const total = (await store.keys.listDataKeys()).length;
      note(`${location}: ${total} data keys to wrap under ${target}`);
      progress = new Progress('rewrapping', total);
      const result = await envelope.rewrap(target, (done) => progress?.update(done));
      progress.finish(total);
      if (args.flag('json')) {
        printJson({ kms_key_id: target, rewrapped: result.rewrapped, already: result.already });
      } else {
        process.stdout.write(
          `wrapped ${result.rewrapped} data keys under ${target}; ${result.already} already were\n`,
        );
      }
    } catch (error) {
      progress?.abort();
      throw error;
    } finally {
      await store.close();
    }
  },
});
