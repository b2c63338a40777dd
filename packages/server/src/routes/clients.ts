import {
  SERVICE_ACTIONS,
  type CertificateBinding,
  type ServiceClientRecord,
  type ServiceGrant,
} from '@tokenwarden/core';
import type { FastifyPluginAsync } from 'fastify';
import { newClientKey } from '../auth/api-keys.ts';
import { authenticateAdmin, recordAudit, type ServerContext } from '../http/context.ts';
import {
  closedObject,
  errorResponses,
  idParams,
  isoTime,
  listReply,
  nameString,
  nullableIsoTime,
  providerName,
} from '../http/schemas.ts';
import { iso, isoOrNull } from '../http/views.ts';

/** The actions a grant may hold (the CLI names them in its messages). */
export const ACTIONS = SERVICE_ACTIONS;

const grantSchema = closedObject(
  {
    owner: { ...nameString, description: 'An owner, or "*" for every owner.' },
    provider: { anyOf: [providerName, { const: '*' }], description: 'A provider name, or "*".' },
    actions: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', enum: ACTIONS },
    },
  },
  ['owner', 'provider', 'actions'],
);

/** The wire form of core's `CertificateBinding`. */
type CertificateBody = { sha256: string } | { subject_cn: string };

const certificateSchema = {
  description:
    'The TLS client certificate this client must present with its key (serve --tls-client-ca): ' +
    'its SHA-256 fingerprint, or its subject common name.',
  oneOf: [
    closedObject({ sha256: { type: 'string', pattern: '^([0-9A-F]{2}:){31}[0-9A-F]{2}$' } }, [
      'sha256',
    ]),
    closedObject({ subject_cn: { type: 'string', minLength: 1, maxLength: 256 } }, ['subject_cn']),
  ],
} as const;

const clientView = closedObject(
  {
    id: { type: 'string' },
    name: { type: 'string' },
    grants: { type: 'array', items: grantSchema },
    certificate: { anyOf: [certificateSchema, { type: 'null' }] },
    created_at: isoTime,
    revoked_at: nullableIsoTime,
  },
  ['id', 'name', 'grants', 'certificate', 'created_at', 'revoked_at'],
);

interface CreateBody {
  name: string;
  grants: ServiceGrant[];
  certificate?: CertificateBody;
}

/** Service clients (admin): each gets an API key, shown once, and grants on owners × providers. */
export const clientRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.addHook('onRequest', authenticateAdmin(ctx));

  app.post<{ Body: CreateBody }>(
    '/v1/clients',
    {
      schema: {
        tags: ['clients'],
        summary: 'Create a service client; its API key is in this response only (admin)',
        body: closedObject(
          {
            name: { ...nameString, maxLength: 128 },
            grants: { type: 'array', maxItems: 100, items: grantSchema },
            certificate: certificateSchema,
          },
          ['name', 'grants'],
        ),
        response: {
          201: closedObject(
            {
              id: { type: 'string' },
              name: { type: 'string' },
              api_key: { type: 'string', description: 'Shown once; only its hash is stored.' },
              grants: { type: 'array', items: grantSchema },
              certificate: { anyOf: [certificateSchema, { type: 'null' }] },
              created_at: isoTime,
            },
            ['id', 'name', 'api_key', 'grants', 'certificate', 'created_at'],
          ),
          ...errorResponses(400, 401, 403, 413),
        },
      },
      config: { auditAction: 'client.create' },
    },
    async (request, reply) => {
      const { clientId, apiKey, keyHash } = newClientKey();
      const grants = request.body.grants.map(({ owner, provider, actions }) => ({
        owner,
        provider,
        actions: [...actions],
      }));
      const client = await ctx.service.insertClient({
        id: clientId,
        name: request.body.name,
        keyHash,
        grants,
        certificate: fromBody(request.body.certificate),
      });
      recordAudit(ctx, request, {
        action: 'client.create',
        outcome: 'ok',
        detail: {
          client_id: client.id,
          name: client.name,
          grants: client.grants,
          certificate: toBody(client.certificate),
        },
      });
      // The one response that carries the key: not to be cached (as for tokens, RFC 6749 §5.1).
      void reply.header('cache-control', 'no-store');
      return reply.code(201).send({
        id: client.id,
        name: client.name,
        api_key: apiKey,
        grants: client.grants,
        certificate: toBody(client.certificate),
        created_at: iso(client.createdAt),
      });
    },
  );

  app.get(
    '/v1/clients',
    {
      schema: {
        tags: ['clients'],
        summary: 'Every service client, revoked ones included; never a key (admin)',
        response: { 200: listReply('clients', clientView), ...errorResponses(401, 403) },
      },
      config: { auditAction: 'client.list' },
    },
    async () => ({ clients: (await ctx.service.listClients()).map(view) }),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/clients/:id',
    {
      schema: {
        tags: ['clients'],
        summary: 'Revoke a service client: its key is refused from the next request on (admin)',
        params: idParams,
        response: { 204: { type: 'null' }, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'client.revoke' },
    },
    async (request, reply) => {
      const { id } = request.params;
      const client = await ctx.service.getClient(id);
      if (!client) {
        recordAudit(ctx, request, {
          action: 'client.revoke',
          outcome: 'not_found',
          detail: { client_id: id },
        });
        return reply.code(404).send({ error: 'not_found', message: 'No client with this id.' });
      }
      // Revoking twice is not an error: the client is revoked either way.
      const revoked = await ctx.service.revokeClient(id);
      recordAudit(ctx, request, {
        action: 'client.revoke',
        outcome: 'ok',
        detail: { client_id: id, name: client.name, already_revoked: !revoked },
      });
      return reply.code(204).send();
    },
  );
};

function view(client: ServiceClientRecord) {
  return {
    id: client.id,
    name: client.name,
    grants: client.grants,
    certificate: toBody(client.certificate),
    created_at: iso(client.createdAt),
    revoked_at: isoOrNull(client.revokedAt),
  };
}

function fromBody(body: CertificateBody | undefined): CertificateBinding | null {
  if (body === undefined) return null;
  return 'sha256' in body ? { sha256: body.sha256 } : { subjectCn: body.subject_cn };
}

function toBody(binding: CertificateBinding | null): CertificateBody | null {
  if (binding === null) return null;
  return 'sha256' in binding ? { sha256: binding.sha256 } : { subject_cn: binding.subjectCn };
}
