import path from 'node:path';
import express, { Router, type RequestHandler } from 'express';
import { contentSecurityPolicy } from 'helmet';
import { projectRoot } from '../../paths';

const publicDir = path.join(projectRoot, 'public');
// The package exports only its module entry points; its browser build sits beside them.
const chartJsBuild = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js');

/**
 * The page only ever loads its own script and style and talks to its own API, and its forms are
 * handled by that script, so the policy says exactly that: injected markup could neither run nor
 * send the token anywhere else. The other security headers are the app's (helmet, in app.ts).
 */
const pagePolicy = contentSecurityPolicy({
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    connectSrc: ["'self'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
  },
});

// Revalidate on every load (ETag), so a deploy never leaves an old script beside new markup.
const revalidate: RequestHandler = (_req, res, next) => {
  res.set('Cache-Control', 'no-cache');
  next();
};

/**
 * The audit explorer for people: `GET /audit`, its assets under `/audit/assets/` and the chart
 * library it draws with at `/audit/vendor/chart.umd.js`, served from node_modules (no CDN, no
 * build step). It is public on purpose; the data it shows comes from `/api/v1`, which needs a
 * bearer token.
 */
export function auditPageRouter(): Router {
  const router = Router();
  router.use('/audit', pagePolicy, revalidate);
  router.get('/audit', (_req, res) => {
    res.sendFile(path.join(publicDir, 'audit.html'));
  });
  router.get('/audit/vendor/chart.umd.js', (_req, res) => {
    res.type('text/javascript').sendFile(chartJsBuild);
  });
  router.use('/audit/assets', express.static(publicDir, { index: false, redirect: false, dotfiles: 'ignore' }));
  return router;
}
