import { z } from 'zod';
import type { FailureClass, TaskStatus } from './statuses';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * Null is added by a union around the named component rather than inside it: zod-to-openapi 9
 * renders a reference to a schema that admits null as `oneOf [$ref, null]`, which a null value
 * matches twice and so fails, and it drops the null of `.nullable()` on a named schema.
 */
const JsonValue: z.ZodType<Exclude<Json, null>> = z
  .lazy(() => z.union([z.string(), z.number(), z.boolean(), z.array(Json), z.record(z.string(), Json)]))
  .meta({ id: 'JsonValue', description: 'Any JSON value but null.' });
export const Json: z.ZodType<Json> = z.union([JsonValue, z.null()]);

export interface Failure {
  message: string;
  stack?: string;
  resourceState?: Json;
  context?: Json;
}

/**
 * A principal the workflow was told of, to be checked before its row is written: `act` is what the
 * API signed it for (`submit`, or `update:<Update id>`), `proof` the API's HMAC (src/principalProof.ts).
 */
export interface ActorClaim {
  act: string;
  proof: string | null;
}

/** One row to append; (taskId, runId, seq) makes a retried append a no-op. */
export interface LedgerEntry {
  taskId: string;
  runId: string;
  seq: number;
  status: TaskStatus;
  action: string;
  services: string[];
  agent?: string;
  actor: string;
  /** Present when `actor` is a principal from the workflow's input; never stored. */
  actorClaim?: ActorClaim;
  plan?: Json;
  outcome?: Json;
  resourcesUsed?: Json;
  failure?: Failure;
  failureClass?: FailureClass;
}
