import net from 'node:net';
import { freeServerPorts } from '../../src/cluster/ports';

/** A port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A free port below the kernel's ephemeral range, for a server started again on the same port: an
 * outgoing connection of any process may take a port from freePort() as its own end, and holds it
 * for as long as it lives, while it never takes one below the range.
 */
export async function freeServerPort(): Promise<number> {
  const [port] = await freeServerPorts(1);
  return port!;
}
