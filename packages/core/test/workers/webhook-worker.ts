// A replica's webhook delivery, alone in its process: delivers the shared outbox until its stdin
// closes (or it is killed). Prints TW_READY once delivering.
import { WebhookDelivery } from '@tokenwarden/core';
import { openBrokerFromEnv } from '@tokenwarden/testkit';

const { store, keyRing, close } = await openBrokerFromEnv();
const delivery = new WebhookDelivery({
  store: store.webhooks,
  keyRing,
  allowPrivate: true,
  pollIntervalMs: 20,
  retryDelaysMs: [50],
});
delivery.start();
process.stdout.write('TW_READY\n');
process.stdin.on('end', () => {
  void delivery
    .stop()
    .then(close)
    .then(() => process.exit(0));
});
process.stdin.resume();
