// `tokenwarden admin-key rotate`: a new admin key for a database that keeps its own (the embedded
// default's, generated at first start), the old one valid for an overlap.
import { AdminKeyRotationError, rotateAdminKey } from '../auth/admin-keys.ts';
import { adminKeyFile, writeAdminKeyFile } from './admin-key-file.ts';
import { defineCommand, valued } from './args.ts';
import { group } from './group.ts';
import { openDatabase, DB_HELP } from './database.ts';
import { CliError, oneLine } from './errors.ts';
import { note } from './output.ts';

const DEFAULT_OVERLAP_SECONDS = 24 * 3600;

const ROTATE_HELP = `Usage: tokenwarden admin-key rotate [--db <path|url>] [--overlap <seconds>] [--out <file>]

Replaces the admin key that the database keeps (the one the first start generated; a server
given TOKENWARDEN_ADMIN_KEY ignores it: change that variable on every replica instead). The
new key works on every running server at once; the old one keeps working for the overlap,
then is refused. A second rotation ends the first one's overlap.

Options:
${DB_HELP}
  --overlap <s>    seconds the old key stays valid (default ${DEFAULT_OVERLAP_SECONDS}, 0 ends it now)
  --out <file>     where the new key is written (mode 0600). Default on SQLite: the
                   tokenwarden.admin-key file beside the database; on Postgres the key is
                   printed instead, once`;

const rotateCommand = defineCommand({
  name: 'admin-key rotate',
  summary: 'replace the admin key; the old one valid for an overlap',
  help: ROTATE_HELP,
  options: { ...valued('db', 'overlap', 'out') },
  async run(args) {
    const overlapSeconds =
      args.int('overlap', { min: 0, max: 30 * 24 * 3600 }) ?? DEFAULT_OVERLAP_SECONDS;
    const database = await openDatabase({ db: args.string('db'), create: false, warn });
    const { store } = database;
    try {
      const out =
        args.string('out') ??
        (database.kind === 'sqlite' ? adminKeyFile(database.location) : undefined);
      const { key, previousUntilMs } = await rotateAdminKey(
        store.service,
        overlapSeconds * 1000,
        await store.now(),
      );
      const until = new Date(previousUntilMs).toISOString();
      if (out === undefined) {
        process.stdout.write(`${key}\n`);
        note(`The new admin key is shown only this once. The old one is valid until ${until}.`);
      } else {
        writeAdminKeyFile(out, key);
        note(`Wrote the new admin key to ${out} (mode 0600). The old one is valid until ${until}.`);
      }
    } catch (error) {
      if (error instanceof AdminKeyRotationError) throw new CliError(error.message);
      throw error;
    } finally {
      await store.close();
    }
  },
});

export const adminKeyCommand = group('admin-key', 'rotate the admin key', [rotateCommand]);

function warn(message: string): void {
  note(`warning: ${oneLine(message)}`);
}
