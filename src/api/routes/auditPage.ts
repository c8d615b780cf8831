import path from 'node:path';
import express, { Router, type RequestHandler } from 'express';
import { projectRoot } from '../../paths';

const publicDir = path.join(projectRoot, 'public');

/**
 * The page only ever loads its own script and style and talks to its own API, so the policy
 * says exactly that: injected markup could neither run nor send the token anywhere else.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const pageHeaders: RequestHandler = (_req, res, next) => {
  res.set({
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    // Revalidate on every load (ETag), so a deploy never leaves an old script beside new markup.
    'Cache-Control': 'no-cache',
  });
  next();
};

/**
 * The audit explorer for people: `GET /audit` and its assets under `/audit/assets/`. It is
 * public on purpose; the data it shows comes from `/api/v1/audit`, which needs a bearer token.
 */
export function auditPageRouter(): Router {
  const router = Router();
  router.use('/audit', pageHeaders);
  router.get('/audit', (_req, res) => {
    res.sendFile(path.join(publicDir, 'audit.html'));
  });
  router.use('/audit/assets', express.static(publicDir, { index: false, redirect: false, dotfiles: 'ignore' }));
  return router;
}
