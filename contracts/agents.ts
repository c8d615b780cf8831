import { z } from 'zod';
import { AgentId } from './task';

/** An agent's last capacity report, whether it is recent enough to admit on, and what is reserved on it. */
export const Agent = z
  .object({
    agentId: AgentId,
    pool: z.string(),
    taskQueue: z.string(),
    live: z.boolean().meta({ description: 'The last report is recent enough for admission to use' }),
    heartbeatAt: z.iso.datetime(),
    cpuCores: z.number(),
    loadPct: z.number(),
    memoryTotalMb: z.number(),
    memoryFreeMb: z.number(),
    gpuVramTotalMb: z.number().nullable(),
    gpuVramFreeMb: z.number().nullable(),
    labels: z.record(z.string(), z.string()),
    reserved: z.object({ tasks: z.number().int(), cpu: z.number(), memoryMb: z.number(), gpuVramMb: z.number() }),
  })
  .meta({ id: 'Agent' });
export type Agent = z.infer<typeof Agent>;

export const AgentList = z.object({ agents: z.array(Agent) }).meta({ id: 'AgentList' });
export type AgentList = z.infer<typeof AgentList>;
