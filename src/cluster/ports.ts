import net from 'node:net';

/**
 * Temporal stores membership ports as a smallint, so a port at or above 32768 makes the server
 * exit. Linux hands out ephemeral ports from 32768 up, so a random one below that is rarely taken;
 * each is checked by binding it.
 */
const MEMBERSHIP_PORT_LIMIT = 32768;

export async function freePortsBelowSmallintLimit(count: number, taken: ReadonlySet<number> = new Set()): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const candidate = 10_000 + Math.floor(Math.random() * (MEMBERSHIP_PORT_LIMIT - 10_000));
    if (!taken.has(candidate) && !ports.includes(candidate) && (await isFree(candidate))) ports.push(candidate);
  }
  return ports;
}

export function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
