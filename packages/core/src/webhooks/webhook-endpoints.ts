import { randomBytes } from 'node:crypto';
import { sealWebhookSecret, openWebhookSecret, type KeyRing } from '../crypto/index.ts';
import { InvalidInputError } from '../errors.ts';
import type { WebhookEndpointRecord, WebhookStore } from '../store/webhook-store.ts';
import { LIFECYCLE_EVENT_TYPES, type LifecycleEventType } from './events.ts';
import { newSigningSecret } from './signature.ts';
import { checkWebhookUrl } from './url-policy.ts';

export interface WebhookEndpointsOptions {
  /** Usually `store.webhooks`. */
  store: WebhookStore;
  keyRing: KeyRing;
  /** As `WebhookDeliveryOptions.allowPrivate`: private addresses and plain http. Default false. */
  allowPrivate?: boolean;
  /** How long the secret before a rotation keeps signing. Default 24 h. */
  secretOverlapMs?: number;
}

export interface NewWebhookInput {
  url: string;
  /** The event types to send; absent or null for all. */
  events?: readonly string[] | null;
  description?: string | null;
}

/** An endpoint as the API shows it: never its secret. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string | null;
  /** Null: every event type. */
  events: LifecycleEventType[] | null;
  /** Until when the secret before the last rotation still signs, or null. */
  previousSecretUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

/** An endpoint with its signing secret: only in the answer that created or rotated it. */
export interface WebhookEndpointWithSecret {
  endpoint: WebhookEndpoint;
  /** `whsec_...`, as `verifyWebhook` and every Standard Webhooks library take it. */
  secret: string;
}

/** The webhook endpoints (admin): checked, their secrets generated and sealed. */
export class WebhookEndpoints {
  readonly #options: WebhookEndpointsOptions;

  constructor(options: WebhookEndpointsOptions) {
    this.#options = options;
  }

  async create(input: NewWebhookInput): Promise<WebhookEndpointWithSecret> {
    const url = checkWebhookUrl(checkedString('url', input.url, 2048), this.#policy());
    const events = checkedEvents(input.events);
    const description =
      input.description == null ? null : checkedString('description', input.description, 256);
    const id = `wh_${randomBytes(15).toString('base64url')}`;
    const secret = newSigningSecret();
    const record = await this.#options.store.insertEndpoint({
      id,
      url,
      description,
      events: events === null ? null : JSON.stringify(events),
      secret: sealWebhookSecret(this.#options.keyRing, secret, id),
    });
    return { endpoint: view(record), secret };
  }

  async list(): Promise<WebhookEndpoint[]> {
    return (await this.#options.store.listEndpoints()).map(view);
  }

  async get(id: string): Promise<WebhookEndpoint | undefined> {
    const record = await this.#options.store.getEndpoint(id);
    return record && view(record);
  }

  delete(id: string): Promise<boolean> {
    return this.#options.store.deleteEndpoint(id);
  }

  /**
   * A new secret; the current one keeps signing for `overlapMs` (default the configured
   * overlap), so receivers can switch without losing a delivery. Undefined if there is no such
   * endpoint.
   */
  async rotateSecret(
    id: string,
    { overlapMs }: { overlapMs?: number } = {},
  ): Promise<WebhookEndpointWithSecret | undefined> {
    const overlap = overlapMs ?? this.#options.secretOverlapMs ?? 24 * 3600_000;
    if (!Number.isInteger(overlap) || overlap < 0) {
      throw new InvalidInputError('overlap', 'must be a whole number of milliseconds, 0 or more');
    }
    const { store, keyRing } = this.#options;
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await store.getEndpoint(id);
      if (!current) return undefined;
      const secret = newSigningSecret();
      // Resealed under the active key, like the new one.
      const previous = openWebhookSecret(keyRing, current.secret, id);
      const rotated = await store.rotateSecret(id, current.secret, {
        secret: sealWebhookSecret(keyRing, secret, id),
        previousSecret: sealWebhookSecret(keyRing, previous, id),
        overlapMs: overlap,
      });
      if (rotated) return { endpoint: view(rotated), secret };
      // Another rotation got there first: rotate what it left.
    }
    return undefined;
  }

  #policy() {
    return { allowPrivate: this.#options.allowPrivate ?? false };
  }
}

function view(record: WebhookEndpointRecord): WebhookEndpoint {
  return {
    id: record.id,
    url: record.url,
    description: record.description,
    events: record.events === null ? null : (JSON.parse(record.events) as LifecycleEventType[]),
    previousSecretUntil: record.previousSecretUntil,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

function checkedString(field: string, value: unknown, maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw new InvalidInputError(field, `must be a string of 1-${maxLength} characters`);
  }
  return value;
}

function checkedEvents(events: readonly string[] | null | undefined): LifecycleEventType[] | null {
  if (events == null) return null;
  const known = LIFECYCLE_EVENT_TYPES as readonly string[];
  if (!Array.isArray(events) || events.length === 0 || events.some((e) => !known.includes(e))) {
    throw new InvalidInputError('events', `must be a non-empty list of ${known.join(', ')}`);
  }
  return [...new Set(events)] as LifecycleEventType[];
}
