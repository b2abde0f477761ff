import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router } from 'express';
import { CONSOLE_API_PATHS, type ConsoleSignIn } from './routes/console-session.js';

export interface ConsoleOptions {
  /** The built console (dist/console). */
  dir: string;
  /** Origins besides our own the console talks to (the OIDC issuer), for its Content-Security-Policy. */
  connectOrigins?: string[];
  /** The sign-in modes besides an API token (api/routes/console-session.ts). */
  signIn?: ConsoleSignIn;
}

function securityHeaders(connectOrigins: string[]): Record<string, string> {
  const connect = ["'self'", ...connectOrigins].join(' ');
  return {
    'Content-Security-Policy': [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      `connect-src ${connect}`,
      `form-action ${connect}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
      "object-src 'none'",
    ].join('; '),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
  };
}

/**
 * The web console at /console, from the same origin as the API: its files, and index.html for
 * every page path (the console routes in the browser). Without a build, a page that says how to
 * make one.
 */
export function consoleRoutes(options: ConsoleOptions): Router {
  const router = Router();
  const headers = securityHeaders(options.connectOrigins ?? []);
  const index = path.join(options.dir, 'index.html');

  // Without strict routing `/console` also matches `/console/`: only the bare path redirects.
  router.get('/console', (req, res, next) => {
    if (req.path.endsWith('/')) return next();
    res.redirect(301, '/console/');
  });
  router.use(
    '/console/assets',
    express.static(path.join(options.dir, 'assets'), {
      immutable: true,
      maxAge: '365d',
      index: false,
      fallthrough: true,
      setHeaders: (res) => res.setHeader('X-Content-Type-Options', 'nosniff'),
    }),
  );
  router.get('/console/{*page}', (req, res, next) => {
    // A missing file under assets/ is a 404, not the page; the console's own endpoints are not pages either.
    if (req.path.startsWith('/console/assets/') || CONSOLE_API_PATHS.has(req.path)) return next();
    res.set(headers).set('Cache-Control', 'no-store');
    if (!existsSync(index)) {
      res.status(503).type('text/plain').send('The console is not built. Run `npm run build:console` (npm start builds it by itself).\n');
      return;
    }
    res.sendFile(index);
  });
  return router;
}
