export {
  KeyRing,
  loadKeyRing,
  writeKeyFile,
  writePrivateFile,
  KEY_ID_PATTERN,
  KEY_LENGTH,
  GENERATE_KEY_COMMAND,
  type KeyRingKey,
  type LoadKeyRingOptions,
} from './key-ring.ts';
export {
  encrypt,
  decrypt,
  keyIdOf,
  sealField,
  openField,
  fieldAssociatedData,
  sealProviderSecret,
  openProviderSecret,
  providerSecretAssociatedData,
  sealWebhookSecret,
  openWebhookSecret,
  SECRET_FIELDS,
  SEALED_PREFIX,
  type SecretField,
  type FieldContext,
} from './cipher.ts';
export { checkKeyRing, holdsCiphertext, keyCheckSetting, type KeyCheckStore } from './key-check.ts';
export { fileKeySource, KeySourceUnavailableError, type KeySource } from './key-source.ts';
export {
  LiveKeys,
  KEY_HEARTBEAT_MS,
  KEY_HOLDER_MAX_AGE_MS,
  type LiveKeysOptions,
} from './live-keys.ts';
export {
  EnvelopeKeySource,
  type EnvelopeKeySourceOptions,
  type EncryptionContext,
  type KeyWrapper,
} from './kms/envelope-key-source.ts';
export { AwsKms, type AwsKmsOptions } from './kms/aws-kms.ts';
