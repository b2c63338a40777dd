// The console's pages and assets at /console, from the @tokenwarden/console package: its
// public/ folder (HTML, CSS) and the browser script its build emits in dist/.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

/** Assets are addressed by their content's hash (`?v=`), so a browser may keep them for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

export const consoleAssets: FastifyPluginAsync = async (app) => {
  const root = dirname(createRequire(import.meta.url).resolve('@tokenwarden/console/package.json'));
  const assets = { 'app.js': join(root, 'dist'), 'console.css': join(root, 'public') };
  const version = (name: keyof typeof assets) =>
    createHash('sha256')
      .update(readFileSync(join(assets[name], name)))
      .digest('base64url')
      .slice(0, 12);
  // Read once: the page names each asset by its hash, so a new build is a new URL.
  const page = readFileSync(join(root, 'public', 'index.html'), 'utf8')
    .replace('{{app.js}}', `/console/assets/app.js?v=${version('app.js')}`)
    .replace('{{console.css}}', `/console/assets/console.css?v=${version('console.css')}`);

  const sendPage = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page);
  app.get('/console', { schema: { hide: true } }, sendPage);
  app.get('/console/', { schema: { hide: true } }, sendPage);

  await app.register(fastifyStatic, {
    root: Object.values(assets),
    prefix: '/console/assets/',
    decorateReply: false,
    index: false,
    wildcard: false,
    allowedPath: (path) => path.slice(1) in assets,
    cacheControl: false,
    setHeaders: (reply) => void reply.header('cache-control', IMMUTABLE),
  });
};
