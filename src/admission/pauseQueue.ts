import type { PoolClient } from 'pg';
import type { Admission, AdmissionAnswer, AdmissionQuestion, AdmissionRequest, CapacityGrant, QueueEntry, Requirements, WaitReason } from '../../contracts';
import type { Db } from '../db/pool';
import { liveAgents, liveAgentsSql, toAgentCapacity, type LiveAgentRow } from './agentRegistry';
import { DISPATCH_CHANNEL, isDispatchHeld, wakeDispatcher } from './dispatchControl';
import { pickAgent, pickAgentIgnoringCapacity, type AgentCapacity } from './fit';

// Every admission decision takes this transaction lock, so decisions happen one at a time, in order.
const ADMISSION_LOCK = 'opsledger.admission';

/** What admission reads of one task before deciding for it (standingOf). */
type Standing = {
  kept?: Admission;
  grant?: CapacityGrant;
  othersWait: boolean;
  queued: boolean;
  held: boolean;
  agents: AgentCapacity[];
};

/** A reservation with its agent's queue and load, as grantOf and standingOf read it (null columns: none). */
type GrantRow = { agent_id: string | null; task_queue: string | null; load_pct: string | null; overridden: boolean | null };

function toGrant(r: GrantRow | undefined): CapacityGrant | undefined {
  if (!r?.agent_id || !r.task_queue) return undefined;
  return { agentId: r.agent_id, taskQueue: r.task_queue, loadPctAtDispatch: Number(r.load_pct), overridden: r.overridden ?? false };
}

// A task's reservation on an agent ($1 task, $2 agent, $3-$5 needs, $6 overridden), made or moved.
const RESERVE_SQL = `INSERT INTO reservations (task_id, agent_id, cpu, memory_mb, gpu_vram_mb, overridden)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (task_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, cpu = EXCLUDED.cpu,
         memory_mb = EXCLUDED.memory_mb, gpu_vram_mb = EXCLUDED.gpu_vram_mb, overridden = EXCLUDED.overridden,
         reserved_at = now()`;

export interface AdmissionSettings {
  /** An agent whose last report is older than this is not used. */
  agentMaxAgeS: number;
  /** An agent whose load would go above this % cannot take a task. */
  loadThresholdPct: number;
}

/**
 * Admission: the pause queue in dispatch order and the reservations of admitted tasks. A task is
 * admitted when it fits an agent and nothing that fits waits ahead of it; otherwise it waits.
 */
export function createPauseQueue(db: Db, settings: AdmissionSettings) {
  const inAdmission = <T>(work: (client: PoolClient) => Promise<T>) => db.transaction(work, { advisoryLock: ADMISSION_LOCK });

  const reserve = async (client: PoolClient, taskId: string, agent: AgentCapacity, needs: Requirements, overridden: boolean) => {
    await client.query(RESERVE_SQL, [taskId, agent.agentId, needs.cpu, needs.memoryMb, needs.gpuVramMb, overridden]);
    agent.reserved = {
      cpu: agent.reserved.cpu + needs.cpu,
      memoryMb: agent.reserved.memoryMb + needs.memoryMb,
      gpuVramMb: agent.reserved.gpuVramMb + needs.gpuVramMb,
    };
  };

  /**
   * One dispatch pass for a pool: walks waiting tasks in priority, then age order and reserves
   * for each that fits, so a task that fits is never overtaken by one behind it. Reserved rows
   * keep granted_agent until their workflow has been signalled.
   */
  const dispatchPass = async (client: PoolClient, pool: string): Promise<number> => {
    if (await isDispatchHeld(client)) {
      await client.query(`UPDATE pause_queue SET reason = 'dispatch_hold', updated_at = clock_timestamp()
                           WHERE pool = $1 AND reason = 'capacity'`, [pool]);
      return 0;
    }
    await client.query(`UPDATE pause_queue SET reason = 'capacity', updated_at = clock_timestamp()
                         WHERE pool = $1 AND reason = 'dispatch_hold'`, [pool]);
    const waiting = await client.query<{ task_id: string; requirements: Requirements; shortfall: string | null }>(
      `SELECT task_id, requirements, shortfall FROM pause_queue
        WHERE pool = $1 AND held_by IS NULL AND granted_agent IS NULL
        ORDER BY priority DESC, enqueued_at, task_id`,
      [pool],
    );
    if (waiting.rows.length === 0) return 0;
    const agents = await liveAgents(client, pool, settings);
    let granted = 0;
    for (const row of waiting.rows) {
      const pick = pickAgent(agents, row.requirements, settings.loadThresholdPct);
      if (pick.fits) {
        await reserve(client, row.task_id, pick.agent, row.requirements, false);
        await client.query(
          `UPDATE pause_queue SET granted_agent = $2, load_pct_at_dispatch = $3, shortfall = NULL,
             updated_at = clock_timestamp()
           WHERE task_id = $1`,
          [row.task_id, pick.agent.agentId, pick.agent.loadPct],
        );
        granted += 1;
      } else if (pick.shortfall !== row.shortfall) {
        await client.query('UPDATE pause_queue SET shortfall = $2, updated_at = clock_timestamp() WHERE task_id = $1', [
          row.task_id,
          pick.shortfall,
        ]);
      }
    }
    return granted;
  };

  const grantOf = async (client: PoolClient, taskId: string): Promise<CapacityGrant | undefined> => {
    const { rows } = await client.query<GrantRow>(
      `SELECT r.agent_id, a.task_queue, a.load_pct, r.overridden
         FROM reservations r JOIN agents a ON a.agent_id = r.agent_id WHERE r.task_id = $1`,
      [taskId],
    );
    return toGrant(rows[0]);
  };

  const position = async (client: PoolClient, taskId: string, pool: string): Promise<number> => {
    const { rows } = await client.query<{ position: string }>(
      `SELECT position FROM (
         SELECT task_id, row_number() OVER (ORDER BY priority DESC, enqueued_at, task_id) AS position
           FROM pause_queue WHERE pool = $2) ordered
        WHERE task_id = $1`,
      [taskId, pool],
    );
    return Number(rows[0]?.position ?? 0);
  };

  /**
   * All admission knows of a task before it decides, in one read: the answer kept for this
   * question (none for a remote activity's, which history keeps), the task's reservation, whether
   * it or others wait, the dispatch hold and the pool's live agents. Every round trip made under
   * the admission lock waits on the worker's event loop while every other task waits on the lock:
   * the bench's tasks spent most of their time queued on it.
   */
  const standingOf = async (client: PoolClient, request: AdmissionRequest, question?: AdmissionQuestion): Promise<Standing> => {
    const { rows } = await client.query<
      GrantRow & { kept: Admission | null; others_wait: boolean; queued: boolean; held: boolean; agents: LiveAgentRow[] }
    >(
      `SELECT (SELECT answer FROM admission_answers WHERE task_id = $2 AND run_id = $3 AND ask = $4) AS kept,
              r.agent_id, a.task_queue, a.load_pct, r.overridden,
              EXISTS (SELECT 1 FROM pause_queue WHERE pool = $1 AND task_id <> $2) AS others_wait,
              EXISTS (SELECT 1 FROM pause_queue WHERE task_id = $2) AS queued,
              coalesce((SELECT held FROM dispatch_control), false) AS held,
              (SELECT coalesce(json_agg(live ORDER BY live.agent_id), '[]') FROM (${liveAgentsSql('$1', '$5')}) live) AS agents
         FROM (SELECT) AS task
         LEFT JOIN reservations r ON r.task_id = $2
         LEFT JOIN agents a ON a.agent_id = r.agent_id`,
      [request.pool, request.taskId, question?.runId ?? null, question?.ask ?? null, settings.agentMaxAgeS],
    );
    const r = rows[0]!;
    return {
      kept: r.kept ?? undefined,
      grant: toGrant(r),
      othersWait: r.others_wait,
      queued: r.queued,
      held: r.held,
      agents: r.agents.map(toAgentCapacity),
    };
  };

  /**
   * Admits a task or queues it, and keeps the answer to `question` where there is one. A newcomer
   * joins the queue and takes part in one dispatch pass, so it is admitted at once only if nothing
   * ahead of it that fits is waiting.
   */
  const decide = async (client: PoolClient, request: AdmissionRequest, standing: Standing, question?: AdmissionQuestion): Promise<Admission> => {
    const direct = await admitWhenNoneWaits(client, request, standing, question);
    if (direct) return direct;
    const answer = await decideAfterWalk(client, request, standing);
    if (question) {
      await client.query('INSERT INTO admission_answers (task_id, run_id, ask, answer) VALUES ($1, $2, $3, $4)', [
        request.taskId,
        question.runId,
        question.ask,
        JSON.stringify(answer),
      ]);
    }
    return answer;
  };

  /** The task's standing grant, or the queue walk: every case but the usual one. */
  const decideAfterWalk = async (client: PoolClient, request: AdmissionRequest, standing: Standing): Promise<Admission> => {
    if (standing.grant) {
      if (standing.queued) await client.query('DELETE FROM pause_queue WHERE task_id = $1', [request.taskId]);
      return { admitted: true, ...standing.grant };
    }
    await client.query(
      `INSERT INTO pause_queue (task_id, pool, priority, reason, requirements)
       VALUES ($1, $2, $3, 'capacity', $4) ON CONFLICT (task_id) DO NOTHING`,
      [request.taskId, request.pool, request.priority, JSON.stringify(request.needs)],
    );
    const grantedOthers = await dispatchPass(client, request.pool);
    const mine = await grantOf(client, request.taskId);
    if (mine) {
      await client.query('DELETE FROM pause_queue WHERE task_id = $1', [request.taskId]);
      if (grantedOthers > 1) await wakeDispatcher(client, request.pool);
      return { admitted: true, ...mine };
    }
    if (grantedOthers > 0) await wakeDispatcher(client, request.pool);
    const { rows } = await client.query<{ reason: WaitReason; shortfall: string | null }>(
      'SELECT reason, shortfall FROM pause_queue WHERE task_id = $1',
      [request.taskId],
    );
    return {
      admitted: false,
      reason: rows[0]?.reason ?? 'capacity',
      shortfall: rows[0]?.shortfall ?? null,
      position: await position(client, request.taskId, request.pool),
    };
  };

  /**
   * The usual case, in one statement after the read: no reservation yet, nothing else in the pool
   * waits and dispatch is not held, so a task that fits an agent now overtakes no one; it is
   * reserved for, leaves the queue if it was in it, and the answer is kept, at once. Anything else
   * (a standing grant, someone waits, held, no fit) is left to decideAfterWalk, undefined.
   */
  const admitWhenNoneWaits = async (
    client: PoolClient,
    request: AdmissionRequest,
    { grant, othersWait, held, agents }: Standing,
    question?: AdmissionQuestion,
  ): Promise<Admission | undefined> => {
    if (grant || othersWait || held) return undefined;
    const pick = pickAgent(agents, request.needs, settings.loadThresholdPct);
    if (!pick.fits) return undefined;
    const { agentId, taskQueue, loadPct } = pick.agent;
    const answer: Admission = { admitted: true, agentId, taskQueue, loadPctAtDispatch: loadPct, overridden: false };
    const { cpu, memoryMb, gpuVramMb } = request.needs;
    await client.query(
      `WITH reserved AS (${RESERVE_SQL}),
            unqueued AS (DELETE FROM pause_queue WHERE task_id = $1),
            answered AS (INSERT INTO admission_answers (task_id, run_id, ask, answer)
                         SELECT $1, $7::text, $8::int, $9::jsonb WHERE $7::text IS NOT NULL)
       SELECT 1`,
      [request.taskId, agentId, cpu, memoryMb, gpuVramMb, false, question?.runId ?? null, question?.ask ?? null, JSON.stringify(answer)],
    );
    return answer;
  };

  /**
   * A kept "admitted" stands with its reservation: the lost attempt may have gone on to free it (a
   * run lost to infrastructure frees what it held, then asks again in the same workflow task, and
   * the next attempt frees it once more before the kept answer sends the task to that agent).
   * Reserved again where it is gone, so the agent's headroom counts the task that will run there.
   */
  const keepReservation = async (client: PoolClient, request: AdmissionRequest, grant: CapacityGrant): Promise<void> => {
    await client.query(
      `INSERT INTO reservations (task_id, agent_id, cpu, memory_mb, gpu_vram_mb, overridden)
       SELECT $1, agent_id, $3, $4, $5, $6 FROM agents WHERE agent_id = $2
       ON CONFLICT (task_id) DO NOTHING`,
      [request.taskId, grant.agentId, request.needs.cpu, request.needs.memoryMb, request.needs.gpuVramMb, grant.overridden],
    );
    await client.query('DELETE FROM pause_queue WHERE task_id = $1', [request.taskId]);
  };

  /**
   * Frees the task's reservation and queue row, and with `forgetAnswers` admission's kept answers
   * too, in one statement; freed capacity wakes the dispatcher (at commit).
   */
  const release = async (client: PoolClient, taskId: string, { forgetAnswers = false } = {}): Promise<void> => {
    await client.query(
      `WITH freed AS (DELETE FROM reservations WHERE task_id = $1 RETURNING task_id),
            unqueued AS (DELETE FROM pause_queue WHERE task_id = $1),
            forgotten AS (DELETE FROM admission_answers WHERE task_id = $1 AND $3)
       SELECT pg_notify($2, task_id) FROM freed`,
      [taskId, DISPATCH_CHANNEL, forgetAnswers],
    );
  };

  return {
    /** Admission's decision, as a remote activity asks it: safe to retry, as its answer is kept in history. */
    admit(request: AdmissionRequest): Promise<Admission> {
      return inAdmission(async (client) => decide(client, request, await standingOf(client, request)));
    },

    /**
     * Admission's decision, answered once per question (a run and the number of its ask): asked
     * again, as a local activity is when its workflow task was lost, it gives the first answer,
     * marked `replayed`, whatever has changed since (sql/007_admission_answers.sql).
     */
    admitOnce(request: AdmissionRequest, question: AdmissionQuestion): Promise<AdmissionAnswer> {
      return inAdmission(async (client) => {
        const standing = await standingOf(client, request, question);
        const { kept } = standing;
        if (kept) {
          if (kept.admitted) await keepReservation(client, request, kept);
          return { ...kept, replayed: true };
        }
        return decide(client, request, standing, question);
      });
    },

    /** A dispatch pass over one pool; returns its grants still waiting to be signalled. */
    async dispatch(pool: string): Promise<(CapacityGrant & { taskId: string })[]> {
      // Most wake-ups (each heartbeat, each task's end) find the pool's queue empty: nothing to walk
      // or grant, and no need of the lock. A task queued after this read walks the queue itself.
      const [queued] = await db.query<{ any: boolean }>('SELECT EXISTS (SELECT 1 FROM pause_queue WHERE pool = $1) AS any', [pool]);
      if (!queued?.any) return [];
      return inAdmission(async (client) => {
        await dispatchPass(client, pool);
        const { rows } = await client.query<{ task_id: string; agent_id: string; task_queue: string; load: string; overridden: boolean }>(
          `SELECT q.task_id, r.agent_id, a.task_queue, q.load_pct_at_dispatch AS load, r.overridden
             FROM pause_queue q JOIN reservations r ON r.task_id = q.task_id JOIN agents a ON a.agent_id = r.agent_id
            WHERE q.pool = $1 AND q.granted_agent IS NOT NULL
            ORDER BY q.priority DESC, q.enqueued_at`,
          [pool],
        );
        return rows.map((r) => ({
          taskId: r.task_id, agentId: r.agent_id, taskQueue: r.task_queue,
          loadPctAtDispatch: Number(r.load), overridden: r.overridden,
        }));
      });
    },

    /** The workflow has the grant: the queue row is done. */
    async grantDelivered(taskId: string): Promise<void> {
      await db.query('DELETE FROM pause_queue WHERE task_id = $1 AND granted_agent IS NOT NULL', [taskId]);
    },

    /** Operator hold: the task keeps its place but is skipped; a grant not yet used is given back. */
    hold(request: AdmissionRequest, by: string): Promise<void> {
      return inAdmission(async (client) => {
        await client.query('DELETE FROM reservations WHERE task_id = $1', [request.taskId]);
        await client.query(
          `INSERT INTO pause_queue (task_id, pool, priority, reason, requirements, held_by)
           VALUES ($1, $2, $3, 'operator_hold', $4, $5)
           ON CONFLICT (task_id) DO UPDATE SET reason = 'operator_hold', held_by = EXCLUDED.held_by,
             granted_agent = NULL, load_pct_at_dispatch = NULL, shortfall = NULL, updated_at = clock_timestamp()`,
          [request.taskId, request.pool, request.priority, JSON.stringify(request.needs), by],
        );
        await wakeDispatcher(client, request.pool);
      });
    },

    /** Operator resume of a held task: it waits for capacity again, in its old place. */
    release(taskId: string): Promise<void> {
      return inAdmission(async (client) => {
        await client.query(
          `UPDATE pause_queue SET reason = 'capacity', held_by = NULL, updated_at = clock_timestamp() WHERE task_id = $1`,
          [taskId],
        );
        await wakeDispatcher(client, taskId);
      });
    },

    /** Override: reserve on the live agent with most headroom (or the one named), whatever its load. */
    override(request: AdmissionRequest, agentId?: string): Promise<CapacityGrant | undefined> {
      return inAdmission(async (client) => {
        const agents = await liveAgents(client, request.pool, settings);
        const agent = agentId ? agents.find((a) => a.agentId === agentId) : pickAgentIgnoringCapacity(agents, request.needs);
        if (!agent) return undefined;
        await client.query('DELETE FROM pause_queue WHERE task_id = $1', [request.taskId]);
        const loadPctAtDispatch = agent.loadPct;
        await reserve(client, request.taskId, agent, request.needs, true);
        return { agentId: agent.agentId, taskQueue: agent.taskQueue, loadPctAtDispatch, overridden: true };
      });
    },

    /** The task left the queue, or gave up its grant (a run lost to infrastructure): free its reservation and queue row. */
    finish(taskId: string): Promise<void> {
      return inAdmission((client) => release(client, taskId));
    },

    /**
     * The task ended: free what it held, and forget admission's answers to it. No workflow task
     * both asks admission and writes a final row locally (taskWorkflow's finish()), so once the
     * final row is written no answer can be asked for again.
     */
    ended(taskId: string): Promise<void> {
      return inAdmission((client) => release(client, taskId, { forgetAnswers: true }));
    },

    async queue(pool?: string): Promise<QueueEntry[]> {
      const rows = await db.query<{
        task_id: string; pool: string; priority: number; enqueued_at: Date; reason: WaitReason;
        shortfall: string | null; held_by: string | null; granted_agent: string | null; requirements: Requirements;
      }>(
        `SELECT * FROM pause_queue WHERE $1::text IS NULL OR pool = $1
          ORDER BY pool, priority DESC, enqueued_at, task_id`,
        [pool ?? null],
      );
      return rows.map((r, i) => ({
        position: i + 1, taskId: r.task_id, pool: r.pool, priority: r.priority, enqueuedAt: r.enqueued_at.toISOString(),
        reason: r.reason, shortfall: r.shortfall, heldBy: r.held_by, grantedAgent: r.granted_agent,
        needs: r.requirements,
      }));
    },
  };
}
