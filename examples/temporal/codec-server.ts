// A codec server for the Temporal Web UI and CLI, with the same keys as the workers:
//
//   TOKENWARDEN_CODEC_KEYS=k1:... CODEC_SERVER_TOKEN=<a long random string> \
//   node --conditions=tokenwarden-source --import tsx examples/temporal/codec-server.ts
//
// then in the UI (http://localhost:8233 for `temporal server start-dev`): Settings → Codec Server →
// http://localhost:8888, or `temporal workflow show -w <id> --codec-endpoint http://localhost:8888
// --codec-auth "Bearer <CODEC_SERVER_TOKEN>"`. Replace the shared token with your SSO in production:
// whoever passes `authorize` reads every secret in workflow history.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { createCodecServerHandler, EncryptionCodec } from '@tokenwarden/temporal';

const token = process.env.CODEC_SERVER_TOKEN;
if (!token || token.length < 16) {
  console.error('Set CODEC_SERVER_TOKEN to a random string of 16 characters or more.');
  process.exit(2);
}
const expected = Buffer.from(`Bearer ${token}`);

function authorize(request: IncomingMessage): boolean {
  const given = Buffer.from(request.headers.authorization ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const port = Number(process.env.PORT ?? 8888);
createServer(
  createCodecServerHandler({
    codec: EncryptionCodec.fromEnv(),
    authorize,
    allowedOrigins: (process.env.ALLOWED_ORIGINS ?? 'http://localhost:8233').split(','),
  }),
).listen(port, '127.0.0.1', () => {
  console.log(`Codec server on http://127.0.0.1:${port}`);
});
