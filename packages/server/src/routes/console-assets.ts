// The console's pages and assets at /console, from the @tokenwarden/console package: its
// public/ folder (HTML, CSS) and the browser script its build emits in dist/.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onSendHookHandler } from 'fastify';

/**
 * No inline script or style, nothing from another origin, no framing: a name in the data that
 * looks like markup can never run, even if a page slipped and wrote it as HTML.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** onSend hook of every console response, page or API. */
export const securityHeaders: onSendHookHandler = (_request, reply, payload, done) => {
  void reply.headers({
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  done(null, payload);
};

/** Assets are addressed by their build's hash (in the path), so a browser may keep them for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

export const consoleAssets: FastifyPluginAsync = async (app) => {
  const root = dirname(createRequire(import.meta.url).resolve('@tokenwarden/console/package.json'));
  // The browser modules the build emits (app.js imports the others by relative path) and the
  // style sheet: nothing else in those folders is served.
  const dist = join(root, 'dist');
  const assets = new Map<string, string>([['console.css', join(root, 'public')]]);
  for (const name of readdirSync(dist)) if (name.endsWith('.js')) assets.set(name, dist);
  const build = createHash('sha256');
  for (const [name, folder] of [...assets].sort())
    build.update(name).update(readFileSync(join(folder, name)));
  // One folder per build: a module's relative imports stay inside it, so every file is as
  // immutable as its URL; a new build is a new folder.
  const prefix = `/console/assets/${build.digest('base64url').slice(0, 12)}/`;
  const page = readFileSync(join(root, 'public', 'index.html'), 'utf8').replaceAll(
    '{{assets}}',
    prefix,
  );

  const sendPage = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page);
  app.get('/console', { schema: { hide: true } }, sendPage);
  app.get('/console/', { schema: { hide: true } }, sendPage);

  await app.register(fastifyStatic, {
    root: [...new Set(assets.values())],
    prefix,
    decorateReply: false,
    index: false,
    wildcard: false,
    allowedPath: (path) => assets.has(path.slice(1)),
    cacheControl: false,
    setHeaders: (reply) => void reply.header('cache-control', IMMUTABLE),
  });
};
