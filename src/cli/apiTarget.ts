import fs from 'node:fs';
import path from 'node:path';
import { createApiClient, type ApiClient } from '../client/apiClient';
import { loadConfig } from '../config';

/**
 * The API the CLI talks to: OPSLEDGER_API_URL (default http://localhost:$PORT) with
 * OPSLEDGER_TOKEN, else the local admin token `opsledger dev` keeps in the data folder.
 */
export function cliApiClient(): ApiClient {
  const config = loadConfig();
  const baseUrl = process.env.OPSLEDGER_API_URL ?? `http://localhost:${config.PORT}`;
  const devToken = path.join(config.OPSLEDGER_DATA_DIR, 'admin-token');
  const token = process.env.OPSLEDGER_TOKEN ?? (fs.existsSync(devToken) ? fs.readFileSync(devToken, 'utf8').trim() : undefined);
  return createApiClient({ baseUrl, token });
}
