import type { Db } from '../db/pool';
import { createAgentRegistry } from './agentRegistry';
import { createDispatchControl } from './dispatchControl';
import { createPauseQueue, type AdmissionSettings } from './pauseQueue';
import { createReconciliationQueries } from './reconcile';

/**
 * Everything admission keeps in PostgreSQL, for the activities, the dispatcher and the API to share
 * one object: the pause queue and reservations (pauseQueue.ts), the agents' reports
 * (agentRegistry.ts), the maintenance hold (dispatchControl.ts) and reconciliation's queries
 * (reconcile.ts). Each file owns its SQL.
 */
export function createAdmissionRepository(db: Db, settings: AdmissionSettings) {
  return {
    ...createPauseQueue(db, settings),
    ...createAgentRegistry(db, settings),
    ...createDispatchControl(db),
    ...createReconciliationQueries(db),
  };
}

export type AdmissionRepository = ReturnType<typeof createAdmissionRepository>;
