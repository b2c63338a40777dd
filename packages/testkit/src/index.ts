// @tokenwarden/testkit: a quirk-simulating OAuth provider and a multi-process harness.
export * from './provider/index.ts';
export * from './harness/index.ts';
export * from './fixture/broker-fixture.ts';
// The Store conformance suite needs vitest, so it lives at '@tokenwarden/testkit/conformance'.
export { runStorm, quantile, type StormOptions, type StormReport } from './storm/run-storm.ts';
export { WebhookReceiver, type ReceivedRequest, type ReceiverAnswer } from './webhooks/receiver.ts';
