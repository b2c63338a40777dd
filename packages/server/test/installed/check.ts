// Type-checked with `tsc --noEmit` in the installed project: the published typings resolve
// from dist/ and say what the code does (none of them collapsed to `any`).
import { CredentialBroker, openEmbedded, type AccessToken } from '@tokenwarden/core';
import { NeedsReauthError, TokenwardenClient } from '@tokenwarden/client';
import { buildServer } from '@tokenwarden/server';
import { createActivityHelpers, EncryptionCodec } from '@tokenwarden/temporal';
import { Reauthorization } from '@tokenwarden/temporal/workflow';
import { TestProvider } from '@tokenwarden/testkit';

export async function handOut(broker: CredentialBroker, id: string): Promise<AccessToken> {
  return broker.getAccessToken(id, { minTtlSeconds: 60 });
}

export async function fromWorker(client: TokenwardenClient, id: string): Promise<string> {
  const { accessToken, version } = await client.getAccessToken(id, { minTtl: 60 });
  // @ts-expect-error a version is a number: this line is an error only while the types are real
  const wrong: string = version;
  return `${accessToken}${wrong}`;
}

export const exported = [
  openEmbedded,
  NeedsReauthError,
  buildServer,
  createActivityHelpers,
  EncryptionCodec,
  Reauthorization,
  TestProvider,
];
