import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/** The guide at the top of /docs: what the route schemas cannot say. */
const DESCRIPTION = `
Tokenwarden hands out valid OAuth2 access tokens for connections and refreshes each credential
exactly once, however many callers in however many replicas ask at the same moment.

## Authentication

Every \`/v1\` route but the connect flow's callback needs \`Authorization: Bearer <key>\`:

- **the admin key** (\`TOKENWARDEN_ADMIN_KEY\`, or the one \`tokenwarden serve\` printed once):
  every route, and the only key for providers, clients and the audit log;
- **a service client's key**, \`tw_<client id>_<secret>\` (\`cli_\` + 20 hex digits, then 43
  base64url characters), created by \`POST /v1/clients\` and shown once. Only SHA-256 of the
  secret is stored; a revoked key is refused from its next request on, on every replica.

## Grants

A client holds grants \`{owner, provider, actions}\`; \`owner\` and \`provider\` are a name or
\`"*"\`. Actions: \`token.read\` (the two token routes), \`proxy\` (requests to the provider's API
through \`/v1/proxy/{id}/...\`, the token added by Tokenwarden and never shown), \`connections.read\` (read and list
metadata, introspection), \`connections.write\` (import, re-authorize, delete, start a connect
flow). A request outside the client's grants is
answered \`403 forbidden\` and audited; on a connection the client holds no grant on at all, it
is answered \`404 not_found\`, as for an id that does not exist. A list only returns what the
grants cover.

## Connect flow

\`POST /v1/connect/sessions\` answers the provider's authorization URL (state + PKCE S256) for a
backend to send its user to; the provider sends the browser back to \`GET /v1/connect/callback\`
(the redirect URI to register at every provider; it carries no API key), which creates the
connection (or re-authorizes the one named, keeping its id) and redirects the browser to the
session's \`redirect_uri\` with \`connection_id=\` or \`error=\`. Sessions are single-use and live
10 minutes; a state that matches none is answered \`400 invalid_request\`. Enabled when the server
knows its public callback URL.

## Errors

\`{"error": "<stable code>", "message": "..."}\` — codes in docs/errors.md. \`needs_reauth\`
(409) adds \`reason\`; \`refresh_unavailable\` (503) adds \`retry_after\` and \`Retry-After\`.

## Audit

Every hand-out (\`token.read\`), rejection report (\`token.rejected\`), refresh
(\`connection.refresh\`, actor \`system\` when the scheduler did it), import, delete, refusal and
admin change (\`provider.put\`, \`provider.patch\`, \`provider.delete\`, \`client.create\`,
\`client.revoke\`),
provider check (\`provider.test\`, detail \`verdict\`), re-authorization
(\`connection.reauthorize\`), introspection (\`connection.introspect\`), connect flow step
(\`connect.start\`, and \`connect.callback\` with actor \`browser\`) and revocation at deletion
(\`connection.delete\`, detail \`revocation\`) and proxied call (\`proxy\`, detail method,
upstream origin, path without the query, status, bytes, ms, retried) is recorded with the actor,
the connection, the outcome (\`ok\` or an error code) and the request id (\`X-Request-Id\`, kept
when a proxy sends one). Never a token.
`.trim();

/** The OpenAPI document (from the route schemas) at /docs/json, Swagger UI at /docs. */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Tokenwarden', description: DESCRIPTION, version: '0.1.0' },
      components: {
        securitySchemes: {
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'The admin key, or a service client key tw_<client id>_<secret>.',
          },
        },
      },
      security: [{ apiKey: [] }],
    },
    transformObject: (document) =>
      'openapiObject' in document
        ? markOptionalBodies(document.openapiObject)
        : document.swaggerObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

/**
 * @fastify/swagger marks every request body required. A body schema that admits null is one the
 * route lets the caller omit (`registerJsonParser`): the document says so, or a client generated
 * from it would have to send `null`.
 */
function markOptionalBodies<T extends { paths?: object }>(document: T): T {
  const paths = (document.paths ?? {}) as Record<string, Record<string, Operation>>;
  for (const operation of Object.values(paths).flatMap((methods) => Object.values(methods))) {
    const body = operation.requestBody;
    const type = body?.content?.['application/json']?.schema?.type;
    if (body && Array.isArray(type) && type.includes('null')) body.required = false;
  }
  return document;
}

/** The part of an OpenAPI operation `markOptionalBodies` reads. */
interface Operation {
  requestBody?: {
    required?: boolean;
    content?: Record<string, { schema?: { type?: unknown } }>;
  };
}
