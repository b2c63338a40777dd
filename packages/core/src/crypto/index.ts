export {
  KeyRing,
  loadKeyRing,
  writeKeyFile,
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
