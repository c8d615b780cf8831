import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../../contracts';

const { IndexedValueType } = temporal.api.enums.v1;

const TYPES = {
  KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
} as const;

/**
 * Registers the Ops* search attributes the workflow keeps current. Idempotent, and works on a
 * server whose database already exists (start-dev's --search-attribute flags only apply to a new
 * file).
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !(name in (existing.customAttributes ?? {})));
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map(([name, key]) => [name, TYPES[key.type]])),
  });
}

/**
 * For a server that is still starting (a compose one-shot): waits until the namespace answers,
 * then registers. A real server creates its namespace in the background after its frontend is up.
 */
export async function registerSearchAttributesWhenReady(address: string, namespace: string, waitS: number): Promise<string[]> {
  const deadline = Date.now() + waitS * 1000;
  for (;;) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      try {
        await ensureSearchAttributes(connection, namespace);
        return Object.keys(SEARCH_ATTRIBUTES);
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`namespace ${namespace} at ${address} did not answer in ${waitS} s: ${(err as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
