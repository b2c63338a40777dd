// A worker in the installed project: a token through @tokenwarden/client, and the Temporal
// helpers loaded and used as an activity worker and a workflow bundle would load them.
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { TokenwardenClient } from '@tokenwarden/client';
import { CodecKeyRing, createActivityHelpers, EncryptionCodec } from '@tokenwarden/temporal';
import { Reauthorization } from '@tokenwarden/temporal/workflow';

const { TOKENWARDEN_URL, TOKENWARDEN_API_KEY, CONNECTION_ID } = process.env;
const client = new TokenwardenClient({ baseUrl: TOKENWARDEN_URL, apiKey: TOKENWARDEN_API_KEY });
const { accessToken, version } = await client.getAccessToken(CONNECTION_ID);

const helpers = createActivityHelpers(client);
const codec = new EncryptionCodec({ keys: CodecKeyRing.generate() });
const payload = {
  metadata: { encoding: Buffer.from('json/plain') },
  data: Buffer.from('{}'),
};
const [decoded] = await codec.decode(await codec.encode([payload]));

// What was resolved, and from where; never the token itself.
process.stdout.write(
  `${JSON.stringify({
    version,
    gotToken: typeof accessToken === 'string' && accessToken.length > 0,
    helpers: typeof helpers.withAccessToken,
    codecRoundTrip: Buffer.from(decoded.data).toString(),
    workflow: typeof Reauthorization,
    resolved: [
      '@tokenwarden/client',
      '@tokenwarden/temporal',
      '@tokenwarden/temporal/workflow',
    ].map((name) => import.meta.resolve(name)),
  })}\n`,
);
