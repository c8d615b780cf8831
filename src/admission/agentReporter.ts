import { logger } from '../logger';
import type { HostCapacity } from './hostCapacity';
import type { AdmissionRepository } from './repository';

/** A worker is also an agent: it reports its own host's capacity every `everyS` seconds. */
export function startAgentReporter(opts: {
  admission: AdmissionRepository;
  agentId: string;
  pool: string;
  taskQueue: string;
  everyS: number;
  probe: () => Promise<HostCapacity>;
  labels?: Record<string, string>;
}): { stop(): void; reportNow(): Promise<void> } {
  const reportNow = async () => {
    try {
      await opts.admission.heartbeat({
        agentId: opts.agentId,
        pool: opts.pool,
        taskQueue: opts.taskQueue,
        labels: opts.labels ?? {},
        ...(await opts.probe()),
      });
    } catch (err) {
      logger.warn({ err, agentId: opts.agentId }, 'agent capacity report failed');
    }
  };
  const timer = setInterval(() => void reportNow(), opts.everyS * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer), reportNow };
}
