import { KeyRingError } from '../../errors.ts';
import { KEY_LENGTH } from '../key-ring.ts';
import { KeySourceUnavailableError } from '../key-source.ts';
import type { EncryptionContext, KeyWrapper } from './envelope-key-source.ts';

// Loaded on first use: deployments without a KMS never load the AWS SDK.
type Kms = typeof import('@aws-sdk/client-kms');
/** The fields of the three operations' outputs that are read. */
interface KmsOutput {
  Plaintext?: Uint8Array;
  CiphertextBlob?: Uint8Array;
}

export interface AwsKmsOptions {
  /** AWS_REGION otherwise. */
  region?: string;
  /** AWS_ENDPOINT_URL_KMS otherwise (moto, LocalStack, a VPC endpoint). */
  endpoint?: string;
}

/**
 * AWS KMS through the official client: `GenerateDataKey`, `Decrypt`, `Encrypt`, each with the
 * encryption context. Credentials come from the SDK's usual chain (environment, profile, role).
 */
export class AwsKms implements KeyWrapper {
  readonly #options: AwsKmsOptions;
  #client: Promise<{ kms: Kms; client: InstanceType<Kms['KMSClient']> }> | undefined;

  constructor(options: AwsKmsOptions = {}) {
    this.#options = options;
  }

  async generateDataKey(kmsKeyId: string, context: EncryptionContext) {
    const out = await this.#send(
      'GenerateDataKey',
      (kms) =>
        new kms.GenerateDataKeyCommand({
          KeyId: kmsKeyId,
          KeySpec: 'AES_256',
          EncryptionContext: { ...context },
        }),
    );
    return { key: dataKey(out.Plaintext), wrapped: Buffer.from(out.CiphertextBlob!) };
  }

  async unwrap(wrapped: Buffer, kmsKeyId: string, context: EncryptionContext): Promise<Buffer> {
    const out = await this.#send(
      'Decrypt',
      (kms) =>
        new kms.DecryptCommand({
          KeyId: kmsKeyId,
          CiphertextBlob: wrapped,
          EncryptionContext: { ...context },
        }),
    );
    return dataKey(out.Plaintext);
  }

  async wrap(key: Buffer, kmsKeyId: string, context: EncryptionContext): Promise<Buffer> {
    const out = await this.#send(
      'Encrypt',
      (kms) =>
        new kms.EncryptCommand({
          KeyId: kmsKeyId,
          Plaintext: key,
          EncryptionContext: { ...context },
        }),
    );
    return Buffer.from(out.CiphertextBlob!);
  }

  async #send(operation: string, command: (kms: Kms) => object): Promise<KmsOutput> {
    const { kms, client } = await (this.#client ??= this.#connect());
    try {
      return (await client.send(command(kms) as never)) as KmsOutput;
    } catch (error) {
      throw explained(error, operation);
    }
  }

  async #connect() {
    const kms: Kms = await import('@aws-sdk/client-kms');
    const endpoint = this.#options.endpoint ?? (process.env.AWS_ENDPOINT_URL_KMS || undefined);
    const client = new kms.KMSClient({
      region: this.#options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION,
      endpoint,
      // Fail fast at start: a replica that cannot reach the KMS says so instead of hanging.
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 3_000, requestTimeout: 10_000 },
    });
    return { kms, client };
  }
}

function dataKey(plaintext: Uint8Array | undefined): Buffer {
  if (plaintext === undefined || plaintext.length !== KEY_LENGTH) {
    throw new KeyRingError('AWS KMS returned a data key that is not 32 bytes.');
  }
  return Buffer.from(plaintext);
}

/** The SDK's error, named without its request (which may carry a ciphertext). */
function explained(error: unknown, operation: string): KeyRingError {
  const { name, $fault } = (error ?? {}) as { name?: string; $fault?: string };
  if ($fault === 'client') {
    // Disabled or deleted key, wrong encryption context, no permission: the operator's to fix.
    return new KeyRingError(`AWS KMS refused ${operation}: ${name ?? 'error'}.`);
  }
  return new KeySourceUnavailableError(
    `AWS KMS could not be reached for ${operation} (${name ?? 'error'}${codeOf(error)}).`,
    { cause: error },
  );
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code !== (error as { name?: string }).name ? `: ${code}` : '';
}
