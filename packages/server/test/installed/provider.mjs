// The test provider from the installed @tokenwarden/testkit, until stdin closes. Its first line
// on stdout says where it listens; grants are issued through its /__admin endpoints.
import process from 'node:process';
import { TestProvider } from '@tokenwarden/testkit';

const provider = await TestProvider.start();
// The client secret is the testkit's fixed test value, not a real secret.
const { url, tokenUrl, clientId, clientSecret } = provider;
process.stdout.write(`${JSON.stringify({ url, tokenUrl, clientId, clientSecret })}\n`);
process.stdin.on('end', () => void provider.close().then(() => process.exit(0)));
process.stdin.resume();
