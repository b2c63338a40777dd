// Library mode in the installed project, as the README shows it: the engine embedded in this
// process on a SQLite file in the working directory, refreshing at the test provider.
import process from 'node:process';
import { CredentialBroker, openEmbedded } from '@tokenwarden/core';
import { RemoteTestProvider } from '@tokenwarden/testkit';

const provider = new RemoteTestProvider(process.env.PROVIDER_URL);
const { store, keyRing } = await openEmbedded();
const broker = new CredentialBroker({
  store,
  keyRing,
  providers: [
    {
      name: 'acme',
      tokenUrl: provider.tokenUrl,
      clientId: process.env.PROVIDER_CLIENT_ID,
      clientSecret: process.env.PROVIDER_CLIENT_SECRET,
    },
  ],
});
const grant = await provider.issueGrant();
// Expired at once: the first hand-out has to refresh.
const { id } = await broker.importCredential({
  provider: 'acme',
  owner: 'user-7',
  accessToken: grant.access_token,
  refreshToken: grant.refresh_token,
  expiresIn: 0,
});
const token = await broker.getAccessToken(id);
await store.close();
process.stdout.write(
  `${JSON.stringify({
    version: token.version,
    refreshed: token.accessToken !== grant.access_token,
    resolved: import.meta.resolve('@tokenwarden/core'),
  })}\n`,
);
