import fs from 'node:fs';
import { Client } from 'pg';
import type { TestServices } from './testEnv';

export default async function globalTeardown(): Promise<void> {
  const services = (globalThis as { __opsledger?: TestServices }).__opsledger;
  if (!services) return;
  if (services.dropDatabase) {
    const { adminUrl, database } = services.dropDatabase;
    const client = new Client({ connectionString: adminUrl });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await client.end();
  }
  for (const stop of services.stops.reverse()) await stop();
  fs.rmSync(services.scratch, { recursive: true, force: true });
}
