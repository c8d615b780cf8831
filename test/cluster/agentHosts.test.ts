import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { agentTaskQueue, loadConfig } from '../../src/config';
import { eventually } from '../support/stack';
import { canMakeNetworkNamespaces, startAgentHost, type AgentHost } from './agentHosts';
import { CLUSTER_UP_TIMEOUT_MS, FINAL, startTestCluster, taskState, trail, untilFinal, type Row, type TestCluster } from './harness';

const REPORT_S = 1;

/** Agents that can vanish: each a host of its own behind a link the test can cut. Needs root for `ip netns`. */
(canMakeNetworkNamespaces() ? describe : describe.skip)('agents as hosts of their own, on the production shape', () => {
  let cluster: TestCluster;
  const hosts: AgentHost[] = [];
  const uid = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  const apiUrl = () => cluster.apiUrls[0]!;
  let temporalConnection: Connection | undefined;
  /** Whether `agentId`'s worker has polled its own task queue since `since` (epoch ms): its link to Temporal is back. */
  const polledSince = async (agentId: string, since: number) => {
    temporalConnection ??= await Connection.connect({ address: cluster.state().temporalAddress });
    const { pollers } = await temporalConnection.workflowService.describeTaskQueue({
      namespace: 'default',
      taskQueue: { name: agentTaskQueue(loadConfig({ ...cluster.env, OPSLEDGER_AGENT_ID: agentId })) },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    return (pollers ?? []).some((poller) => (optionalTsToMs(poller.lastAccessTime) ?? 0) > since);
  };
  const liveAgents = async () =>
    ((await cluster.call(apiUrl(), 'GET', '/api/v1/agents')).json?.agents ?? []).filter((a: { live: boolean }) => a.live).map((a: { agentId: string }) => a.agentId) as string[];

  beforeAll(async () => {
    // A report older than 5 s takes an agent out of admission, before its silent playbook is
    // declared lost (10 s), so the re-run goes elsewhere.
    cluster = await startTestCluster({
      agents: 0,
      apis: 1,
      env: { OPSLEDGER_AGENT_REPORT_S: String(REPORT_S), OPSLEDGER_AGENT_MAX_AGE_S: '5', OPSLEDGER_HEARTBEAT_TIMEOUT_S: '10' },
    });
    // Workflows need a worker before any agent can take a task: host-w runs them (and the
    // dispatcher) but reports no capacity, so admission never picks it.
    hosts.push(await startAgentHost(cluster, 'host-w', 1));
    hosts[0]!.startWorker({ OPSLEDGER_AGENT_REPORT_S: '0' });
  }, CLUSTER_UP_TIMEOUT_MS + 120_000);
  afterAll(async () => {
    await temporalConnection?.close();
    for (const host of hosts) await host.close();
    await cluster?.close();
  }, 180_000);

  /** The heartbeatAt of `agentId`'s first report, watched ten times a report interval. */
  const firstReport = (agentId: string) =>
    eventually(async () => {
      const agents = (await cluster.call(apiUrl(), 'GET', '/api/v1/agents')).json?.agents ?? [];
      const agent = agents.find((a: { agentId: string }) => a.agentId === agentId);
      return agent ? Date.parse(agent.heartbeatAt) : undefined;
    }, 120_000);

  test('a waiting task dispatches onto a newly started agent within one report interval', async () => {
    const taskId = uid('newagent');
    expect((await cluster.call(apiUrl(), 'POST', '/api/v1/tasks', { taskId, action: 'check', services: ['dns'], playbook: 'ping.yml' })).status).toBe(202);
    await eventually(async () => ((await taskState(cluster, apiUrl(), taskId))?.status === 'paused' ? true : undefined), 120_000);

    const added = await startAgentHost(cluster, 'host-a', 2);
    hosts.push(added);
    added.startWorker();
    const reported = await firstReport('host-a');
    const dispatched = await eventually(async () => (await trail(cluster, apiUrl(), taskId)).find((r) => r.status === 'dispatched'), 30_000);
    expect(dispatched.agent).toBe('host-a');
    expect(Date.parse((dispatched as Row & { createdAt: string }).createdAt) - reported).toBeLessThanOrEqual(REPORT_S * 1000);
    expect((await untilFinal(cluster, apiUrl(), taskId)).filter((r) => FINAL.includes(r.status)).map((r) => r.status)).toEqual(['succeeded']);
  });

  test("cutting an agent's link mid-playbook: lost to infrastructure, run again on another agent, one final row; back online, the cut agent does not report it done", async () => {
    const other = await startAgentHost(cluster, 'host-b', 3);
    hosts.push(other);
    other.startWorker();
    await eventually(async () => ((await liveAgents()).includes('host-a') && (await liveAgents()).includes('host-b') ? true : undefined), 120_000);
    const cut = hosts.find((h) => h.agentId === 'host-a')!;

    const gate = path.join(cluster.env.OPSLEDGER_CLUSTER_DIR!, `gate-${Date.now()}`);
    const taskId = uid('cut');
    expect((await cluster.call(apiUrl(), 'POST', '/api/v1/dispatch/hold', { by: 'agent host test' })).status).toBe(200);
    try {
      const submitted = await cluster.call(apiUrl(), 'POST', '/api/v1/tasks', {
        taskId, action: 'restart', services: ['portals'], playbook: 'wait-for-file.yml', extraVars: { path: gate },
      });
      expect(submitted.status).toBe(202);
      await eventually(async () => ((await taskState(cluster, apiUrl(), taskId))?.status === 'paused' ? true : undefined));
      expect((await cluster.call(apiUrl(), 'POST', `/api/v1/tasks/${taskId}/override`, { agentId: cut.agentId, reason: 'the host to cut' })).status).toBe(200);
    } finally {
      await cluster.call(apiUrl(), 'POST', '/api/v1/dispatch/release', {});
    }
    await eventually(async () => ((await taskState(cluster, apiUrl(), taskId))?.progress?.task === 'wait for the file' ? true : undefined));

    cut.cut();
    const rerun = await eventually(async () => (await trail(cluster, apiUrl(), taskId)).filter((r) => r.status === 'dispatched')[1], 120_000);
    expect(rerun.agent).toBe(other.agentId);
    expect(rerun.outcome.previousAttemptLost).toMatch(new RegExp(`^attempt 1 on ${cut.agentId}: `));
    fs.writeFileSync(gate, '');
    const rows = await untilFinal(cluster, apiUrl(), taskId);

    // The cut agent's playbook saw the gate too, or is cancelled once a heartbeat tells its SDK
    // the attempt is gone; once its link is back it may try to report.
    const restoredAt = Date.now();
    cut.restore();
    await eventually(async () => ((await liveAgents()).includes(cut.agentId) ? true : undefined), 60_000);
    // Its try ends refused by Temporal or given up, as its SDK logs; or, on a loaded machine, with
    // no word of it: the playbook gone and the agent polling Temporal again. Any report that could
    // still come is for a closed workflow, which Temporal refuses, so what the ledger holds is final.
    const ended = async () =>
      cut.completionOutcome(taskId) ?? (!cut.playbookRunning() && (await polledSince(cut.agentId, restoredAt)) ? 'ended unreported' : undefined);
    const outcome = await eventually(ended, 120_000).catch((err: Error) => {
      throw new Error(`${err.message}; the cut agent's log ends:\n${cut.logTail(40)}`);
    });
    expect(outcome).toMatch(/^(refused|abandoned|ended unreported)$/);
    const after = await trail(cluster, apiUrl(), taskId);
    expect(after.filter((r) => FINAL.includes(r.status)).map((r) => [r.status, r.agent])).toEqual([['succeeded', rerun.agent]]);
    expect(rows.filter((r) => r.status === 'dispatched').map((r) => r.outcome.attempt)).toEqual([1, 2]);
  });
});
