import type { PoolClient } from 'pg';
import type { Db } from '../db/pool';
import { wakeDispatcher } from './dispatchControl';
import { neverFitShortfall, type AgentCapacity, type AgentTotals } from './fit';
import type { Requirements } from '../../contracts';
import type { HostCapacity } from './hostCapacity';

/** What an agent reports: its host's capacity, and where its tasks run. */
export interface AgentReport extends HostCapacity {
  agentId: string;
  pool: string;
  taskQueue: string;
  labels: Record<string, string>;
}

/** An agent whose last report is older than this many seconds is not used. */
export type AgentFreshness = { agentMaxAgeS: number };

/** A live agent's row, as liveAgentsSql selects it (numbers as PostgreSQL sends them: text, or JSON numbers). */
export type LiveAgentRow = {
  agent_id: string; task_queue: string; cpu_cores: string | number; load_pct: string | number; memory_free_mb: string | number;
  gpu_vram_free_mb: string | number | null; cpu: string | number; memory_mb: string | number; gpu_vram_mb: string | number;
};

/**
 * The agents of a pool with a fresh report, and what admitted, unfinished tasks hold on each, by
 * the placeholders of the pool and of the freshness in seconds: admission also reads it inside a
 * larger statement, so that deciding for a task takes one round trip under its lock.
 */
export function liveAgentsSql(poolParam: string, maxAgeParam: string): string {
  return `SELECT a.agent_id, a.task_queue, a.cpu_cores, a.load_pct, a.memory_free_mb, a.gpu_vram_free_mb,
                 coalesce(sum(r.cpu), 0) AS cpu, coalesce(sum(r.memory_mb), 0) AS memory_mb,
                 coalesce(sum(r.gpu_vram_mb), 0) AS gpu_vram_mb
            FROM agents a LEFT JOIN reservations r ON r.agent_id = a.agent_id
           WHERE a.pool = ${poolParam} AND a.heartbeat_at > now() - make_interval(secs => ${maxAgeParam})
           GROUP BY a.agent_id
           ORDER BY a.agent_id`;
}

export function toAgentCapacity(r: LiveAgentRow): AgentCapacity {
  return {
    agentId: r.agent_id,
    taskQueue: r.task_queue,
    cpuCores: Number(r.cpu_cores),
    loadPct: Number(r.load_pct),
    memoryFreeMb: Number(r.memory_free_mb),
    gpuVramFreeMb: r.gpu_vram_free_mb === null ? null : Number(r.gpu_vram_free_mb),
    reserved: { cpu: Number(r.cpu), memoryMb: Number(r.memory_mb), gpuVramMb: Number(r.gpu_vram_mb) },
  };
}

/** The agents of a pool with a fresh report, and what admitted, unfinished tasks hold on each. */
export async function liveAgents(client: PoolClient, pool: string, { agentMaxAgeS }: AgentFreshness): Promise<AgentCapacity[]> {
  const { rows } = await client.query<LiveAgentRow>(liveAgentsSql('$1', '$2'), [pool, agentMaxAgeS]);
  return rows.map(toAgentCapacity);
}

/** The agents table: what each agent last reported, and whether that report is fresh. */
export function createAgentRegistry(db: Db, { agentMaxAgeS, loadThresholdPct = 80 }: AgentFreshness & { loadThresholdPct?: number }) {
  /** The live agents of a pool with their totals, for "could this task ever fit here". */
  async function liveAgentTotals(pool: string): Promise<AgentTotals[]> {
    const rows = await db.query<{ agent_id: string; cpu_cores: string; memory_total_mb: string; gpu_vram_total_mb: string | null }>(
      `SELECT agent_id, cpu_cores, memory_total_mb, gpu_vram_total_mb FROM agents
        WHERE pool = $1 AND heartbeat_at > now() - make_interval(secs => $2) ORDER BY agent_id`,
      [pool, agentMaxAgeS],
    );
    return rows.map((r) => ({
      agentId: r.agent_id,
      cpuCores: Number(r.cpu_cores),
      memoryTotalMb: Number(r.memory_total_mb),
      gpuVramTotalMb: r.gpu_vram_total_mb === null ? null : Number(r.gpu_vram_total_mb),
    }));
  }

  return {
    liveAgentTotals,
    /** Why no live agent of the pool could take these needs even idle; null if one could, or none is live. */
    async neverFits(pool: string, needs: Requirements): Promise<string | null> {
      return neverFitShortfall(await liveAgentTotals(pool), needs, loadThresholdPct);
    },

    async heartbeat(report: AgentReport): Promise<void> {
      await db.query(
        `INSERT INTO agents (agent_id, pool, task_queue, cpu_cores, load_pct, memory_total_mb, memory_free_mb,
                             gpu_vram_total_mb, gpu_vram_free_mb, labels, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
         ON CONFLICT (agent_id) DO UPDATE SET pool = EXCLUDED.pool, task_queue = EXCLUDED.task_queue,
           cpu_cores = EXCLUDED.cpu_cores, load_pct = EXCLUDED.load_pct, memory_total_mb = EXCLUDED.memory_total_mb,
           memory_free_mb = EXCLUDED.memory_free_mb, gpu_vram_total_mb = EXCLUDED.gpu_vram_total_mb,
           gpu_vram_free_mb = EXCLUDED.gpu_vram_free_mb, labels = EXCLUDED.labels, heartbeat_at = now()`,
        [
          report.agentId, report.pool, report.taskQueue, report.cpuCores, report.loadPct, report.memoryTotalMb,
          report.memoryFreeMb, report.gpuVramTotalMb, report.gpuVramFreeMb, JSON.stringify(report.labels),
        ],
      );
      await wakeDispatcher(db, report.agentId);
    },

    /**
     * Forgets an agent. Its reservations go with it (ON DELETE CASCADE); a grant not yet handed to
     * its workflow would point at nothing, so it waits again. Deleting first makes the update see
     * any grant a dispatch pass committed meanwhile. False when there was no such agent.
     */
    async removeAgent(agentId: string): Promise<boolean> {
      return db.transaction(async (client) => {
        const removed = await client.query('DELETE FROM agents WHERE agent_id = $1', [agentId]);
        if (!removed.rowCount) return false;
        await client.query(
          `UPDATE pause_queue SET granted_agent = NULL, load_pct_at_dispatch = NULL, updated_at = clock_timestamp()
            WHERE granted_agent = $1`,
          [agentId],
        );
        await wakeDispatcher(client, agentId);
        return true;
      });
    },

    async agents() {
      return db.query<{
        agent_id: string; pool: string; task_queue: string; cpu_cores: string; load_pct: string;
        memory_total_mb: string; memory_free_mb: string; gpu_vram_total_mb: string | null;
        gpu_vram_free_mb: string | null; labels: Record<string, string>; heartbeat_at: Date; live: boolean;
        reserved_tasks: string; reserved_cpu: string; reserved_memory_mb: string; reserved_gpu_vram_mb: string;
      }>(
        `SELECT a.*, a.heartbeat_at > now() - make_interval(secs => $1) AS live,
                count(r.task_id) AS reserved_tasks, coalesce(sum(r.cpu), 0) AS reserved_cpu,
                coalesce(sum(r.memory_mb), 0) AS reserved_memory_mb, coalesce(sum(r.gpu_vram_mb), 0) AS reserved_gpu_vram_mb
           FROM agents a LEFT JOIN reservations r ON r.agent_id = a.agent_id
          GROUP BY a.agent_id ORDER BY a.agent_id`,
        [agentMaxAgeS],
      );
    },
  };
}
