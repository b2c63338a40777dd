// @tokenwarden/testkit: a quirk-simulating OAuth provider and a multi-process harness.
export * from './provider/index.ts';
export * from './harness/index.ts';
export * from './fixture/broker-fixture.ts';
export {
  ResourceServer,
  patternBytes,
  patternSha256,
  type ResourceServerOptions,
  type SeenRequest,
} from './resource/resource-server.ts';
// The Store conformance suite needs vitest, so it lives at '@tokenwarden/testkit/conformance'.
export { runStorm, quantile, type StormOptions, type StormReport } from './storm/run-storm.ts';
export * from './crash/crash-round.ts';
export * from './crash/crash-torture.ts';
export { startMoto, FAKE_AWS_ENV, type Moto } from './kms/moto.ts';
export { runFailover, type FailoverOptions, type FailoverReport } from './failover/run-failover.ts';
export { WebhookReceiver, type ReceivedRequest, type ReceiverAnswer } from './webhooks/receiver.ts';
