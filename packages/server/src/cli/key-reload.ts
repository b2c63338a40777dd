// Keeps `serve`'s key ring current while it runs (core's `LiveKeys`): a reload on SIGHUP (beside
// the TLS certificate's own SIGHUP listener), on every heartbeat and when a ciphertext names a
// key id not loaded yet, so `keys add`/`keys rotate` or a new KMS data key need no restart.
import { LiveKeys } from '@tokenwarden/core';
import type { OpenDatabase } from './database.ts';

export async function keepKeysCurrent(
  database: OpenDatabase,
  report: (message: string) => void,
): Promise<() => Promise<void>> {
  const heartbeatMs = Number(process.env.TOKENWARDEN_KEY_HEARTBEAT_MS) || undefined;
  const live = new LiveKeys({
    source: database.source,
    ring: database.keyRing,
    store: database.store,
    heartbeatMs,
    log: report,
  });
  await live.start();
  const onHangup = () => {
    report('SIGHUP: reloading keys');
    void live.reload();
  };
  process.on('SIGHUP', onHangup);
  return async () => {
    process.off('SIGHUP', onHangup);
    await live.stop();
  };
}
