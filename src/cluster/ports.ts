import fs from 'node:fs';
import net from 'node:net';

const LOWEST = 10_000;
/** Temporal stores membership ports as a smallint: one at or above 32768 makes the server exit. */
const SMALLINT_PORT_LIMIT = 32768;
const TRIES_PER_PORT = 100;

/**
 * Where the kernel starts handing out the local ends of outgoing connections (Linux's
 * ip_local_port_range; 32768, its default, where that cannot be read). No client connection takes
 * a port below it, so a server can always be started again on such a port.
 */
function ephemeralRangeStart(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return SMALLINT_PORT_LIMIT;
  }
}

/**
 * `count` free ports from 10,000 up to the ephemeral range (and below `limit`), none in `taken`,
 * each checked by binding it; random, so that concurrent callers rarely pick the same one.
 */
export async function freeServerPorts(count: number, { limit = Infinity, taken = new Set<number>() } = {}): Promise<number[]> {
  const below = Math.min(limit, ephemeralRangeStart());
  const ports: number[] = [];
  for (let tries = 0; ports.length < count; tries++) {
    if (tries >= TRIES_PER_PORT * count) throw new Error(`no ${count} free ports between ${LOWEST} and ${below}`);
    const candidate = LOWEST + Math.floor(Math.random() * (below - LOWEST));
    if (!taken.has(candidate) && !ports.includes(candidate) && (await isFree(candidate))) ports.push(candidate);
  }
  return ports;
}

/** Free ports the Temporal server may use for membership, which it stores as a smallint. */
export function freePortsBelowSmallintLimit(count: number, taken: ReadonlySet<number> = new Set()): Promise<number[]> {
  return freeServerPorts(count, { limit: SMALLINT_PORT_LIMIT, taken: new Set(taken) });
}

export function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
