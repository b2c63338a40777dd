// One replica of the webhook benchmark (bench/webhooks/webhooks.ts), in its own process with its
// own store connection: it delivers the shared outbox and, after GO, makes its share of the
// state changes (imports: each writes `connection.created` in its transaction). Line protocol:
//   child → parent: READY once delivering, DONE once its changes are committed
//   parent → child: GO <count>; a closed stdin stops it.
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { WebhookDelivery } from '@tokenwarden/core';
import { openBrokerFromEnv } from '@tokenwarden/testkit';

const { broker, store, keyRing, close } = await openBrokerFromEnv();
const delivery = new WebhookDelivery({ store: store.webhooks, keyRing, allowPrivate: true });
delivery.start();
process.stdout.write('READY\n');

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [command, count] = line.split(' ');
  if (command === 'GO') void changes(Number(count));
});
lines.on('close', () => {
  void delivery
    .stop()
    .then(close)
    .then(() => process.exit(0));
});

/** `count` imports, 8 at a time. */
async function changes(count: number): Promise<void> {
  let next = 0;
  const importer = async () => {
    while (next++ < count) {
      await broker.importConnection({
        provider: 'test',
        owner: `owner-${next % 100}`,
        accessToken: randomBytes(16).toString('hex'),
        refreshToken: randomBytes(16).toString('hex'),
        expiresIn: 3600,
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, importer));
  process.stdout.write('DONE\n');
}
