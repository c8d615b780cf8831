import type { RequestHandler } from 'express';

const FORWARDED_REQUEST_HEADERS = ['authorization', 'accept', 'content-type'];
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'www-authenticate'];

/**
 * Forwards every request it gets to a test stack's API, so a test can put its own routers in
 * front of the real API on a server of its own without rebuilding the API's wiring.
 */
export function forwardTo(baseUrl: string): RequestHandler {
  return async (req, res, next) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = Object.fromEntries(
        FORWARDED_REQUEST_HEADERS.flatMap((name) => (req.get(name) ? [[name, req.get(name)!]] : [])),
      );
      const answer = await fetch(`${baseUrl}${req.originalUrl}`, {
        method: req.method,
        headers,
        body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
      });
      res.status(answer.status);
      for (const name of FORWARDED_RESPONSE_HEADERS) {
        const value = answer.headers.get(name);
        if (value) res.set(name, value);
      }
      res.send(Buffer.from(await answer.arrayBuffer()));
    } catch (error) {
      next(error);
    }
  };
}
