import fs from 'node:fs';
import { dropDatabase } from '../../src/db/databases';
import type { TestServices } from './testEnv';

export default async function globalTeardown(): Promise<void> {
  const services = (globalThis as { __opsledger?: TestServices }).__opsledger;
  if (!services) return;
  if (services.dropDatabase) await dropDatabase(services.dropDatabase.adminUrl, services.dropDatabase.database);
  for (const stop of services.stops.reverse()) await stop();
  fs.rmSync(services.scratch, { recursive: true, force: true });
}
