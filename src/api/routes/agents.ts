import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import type { AdmissionRepository } from '../../admission/repository';
import { NotFoundError } from '../../errors';
import { logger } from '../../logger';
import { AgentList } from '../../../contracts';
import { principalOf, requireAgent, requireRole } from '../auth';
import { jsonResponse, problemResponse } from '../openapi';
import { parseOrThrow } from '../problem';

export type AgentsRouterDeps = { admission: AdmissionRepository; openapi: OpenAPIRegistry };

const AgentIdParams = z.object({ agentId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'expected letters, digits, dot, dash or underscore') });

const mb = z.number().int().min(0).max(1 << 30);

export const AgentHeartbeat = z
  .strictObject({
    pool: z.string().min(1).max(200).meta({ description: 'The shared task queue whose tasks this agent serves.' }),
    taskQueue: z.string().min(1).max(200).meta({ description: 'The agent’s own task queue, polled by its worker.' }),
    cpuCores: z.number().positive().max(4096),
    loadPct: z.number().min(0).max(100_000),
    memoryTotalMb: mb,
    memoryFreeMb: mb,
    gpuVramTotalMb: mb.nullable().default(null),
    gpuVramFreeMb: mb.nullable().default(null),
    labels: z.record(z.string().max(100), z.string().max(200)).default({}),
  })
  .refine((h) => h.memoryFreeMb <= h.memoryTotalMb, { message: 'must not exceed memoryTotalMb', path: ['memoryFreeMb'] })
  .refine((h) => (h.gpuVramFreeMb === null) === (h.gpuVramTotalMb === null), {
    message: 'give both GPU figures or neither',
    path: ['gpuVramFreeMb'],
  })
  .meta({ id: 'AgentHeartbeat' });

export function agentsRouter({ admission, openapi }: AgentsRouterDeps): Router {
  const router = Router();

  openapi.registerPath({
    method: 'put',
    path: '/api/v1/agents/{agentId}/heartbeat',
    summary: 'Report an agent’s capacity; waiting tasks that now fit are resumed.',
    description: 'Only the agent’s own token may report for it: role `agent`, named by the agent id.',
    request: { params: AgentIdParams, body: { content: { 'application/json': { schema: AgentHeartbeat } } } },
    responses: {
      204: { description: 'Recorded' },
      400: problemResponse('Invalid report'),
      403: problemResponse('Not this agent’s own token'),
    },
  });
  router.put('/agents/:agentId/heartbeat', requireAgent('agentId'), async (req, res) => {
    const { agentId } = parseOrThrow(AgentIdParams, req.params);
    const report = parseOrThrow(AgentHeartbeat, req.body);
    await admission.heartbeat({ agentId, ...report });
    res.status(204).end();
  });

  openapi.registerPath({
    method: 'delete',
    path: '/api/v1/agents/{agentId}',
    summary: 'Forget an agent (admin): what is reserved on it is freed and grants it was not yet handed wait again.',
    description: 'A worker that is still running reports itself back; to keep an agent out, also revoke its token.',
    request: { params: AgentIdParams },
    responses: { 204: { description: 'Removed' }, 404: problemResponse('No such agent') },
  });
  router.delete('/agents/:agentId', requireRole('admin'), async (req, res) => {
    const { agentId } = parseOrThrow(AgentIdParams, req.params);
    if (!(await admission.removeAgent(agentId))) throw new NotFoundError(`no agent ${agentId}`);
    logger.info({ agentId, by: principalOf(res)?.name }, 'agent removed');
    res.status(204).end();
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/agents',
    summary: 'Agents, their last capacity report, whether it is recent enough to admit on, and what is reserved on them.',
    responses: { 200: jsonResponse('Agents, by agentId', AgentList) },
  });
  router.get('/agents', requireRole('viewer'), async (_req, res) => {
    const rows = await admission.agents();
    res.json({
      agents: rows.map((a) => ({
        agentId: a.agent_id,
        pool: a.pool,
        taskQueue: a.task_queue,
        live: a.live,
        heartbeatAt: a.heartbeat_at.toISOString(),
        cpuCores: Number(a.cpu_cores),
        loadPct: Number(a.load_pct),
        memoryTotalMb: Number(a.memory_total_mb),
        memoryFreeMb: Number(a.memory_free_mb),
        gpuVramTotalMb: a.gpu_vram_total_mb === null ? null : Number(a.gpu_vram_total_mb),
        gpuVramFreeMb: a.gpu_vram_free_mb === null ? null : Number(a.gpu_vram_free_mb),
        labels: a.labels,
        reserved: {
          tasks: Number(a.reserved_tasks),
          cpu: Number(a.reserved_cpu),
          memoryMb: Number(a.reserved_memory_mb),
          gpuVramMb: Number(a.reserved_gpu_vram_mb),
        },
      })),
    } satisfies AgentList);
  });

  return router;
}
