import { describeShortfall, pickAgent, pickAgentIgnoringCapacity, type AgentCapacity } from '../../src/admission/fit';

const agent = (over: Partial<AgentCapacity> = {}): AgentCapacity => ({
  agentId: 'a',
  taskQueue: 'q-a',
  cpuCores: 4,
  loadPct: 10,
  memoryFreeMb: 8192,
  gpuVramFreeMb: null,
  reserved: { cpu: 0, memoryMb: 0, gpuVramMb: 0 },
  ...over,
});
const small = { cpu: 0.5, memoryMb: 256, gpuVramMb: 0 };

describe('pickAgent', () => {
  test('picks the agent with the lowest load after the task, then the most memory left', () => {
    const pick = pickAgent(
      [agent({ agentId: 'busy', loadPct: 60 }), agent({ agentId: 'idle', loadPct: 5 }), agent({ agentId: 'idle2', loadPct: 5, memoryFreeMb: 16384 })],
      small,
      80,
    );
    expect(pick).toMatchObject({ fits: true, agent: { agentId: 'idle2' }, loadAfterPct: 17.5 });
  });

  test('counts what running tasks reserved', () => {
    const reserved = agent({ reserved: { cpu: 2, memoryMb: 8000, gpuVramMb: 0 } });
    expect(pickAgent([reserved], small, 80)).toEqual({
      fits: false,
      shortfall: 'needs 256 MiB memory, best agent has 192 MiB',
    });
  });

  test('refuses an agent that would go above the load threshold', () => {
    const pick = pickAgent([agent({ loadPct: 79 })], { cpu: 1, memoryMb: 0, gpuVramMb: 0 }, 80);
    expect(pick).toEqual({ fits: false, shortfall: 'needs 1 CPU, every agent would be above 80% load (best 104%)' });
  });

  test('needs GPU VRAM only from agents that have a GPU', () => {
    const needs = { cpu: 0.1, memoryMb: 0, gpuVramMb: 8192 };
    expect(pickAgent([agent()], needs, 80)).toEqual({ fits: false, shortfall: 'needs 8 GiB GPU VRAM, no live agent has a GPU' });
    expect(pickAgent([agent({ gpuVramFreeMb: 2048 })], needs, 80)).toEqual({
      fits: false,
      shortfall: 'needs 8 GiB GPU VRAM, best agent has 2 GiB',
    });
    expect(pickAgent([agent({ gpuVramFreeMb: 10240 })], needs, 80)).toMatchObject({ fits: true });
  });

  test('says so when there is no live agent, or none with everything at once', () => {
    expect(describeShortfall([], small, 80)).toBe('no live agent');
    const needs = { cpu: 1, memoryMb: 4096, gpuVramMb: 0 };
    const cpuRich = agent({ agentId: 'cpu', memoryFreeMb: 1024 });
    const memoryRich = agent({ agentId: 'mem', loadPct: 90 });
    expect(pickAgent([cpuRich, memoryRich], needs, 80)).toEqual({
      fits: false,
      shortfall: 'no single agent has the CPU, memory and GPU VRAM together',
    });
  });

  test('override ignores the threshold but still takes the least loaded agent', () => {
    expect(pickAgentIgnoringCapacity([agent({ agentId: 'x', loadPct: 99 }), agent({ agentId: 'y', loadPct: 95 })], small)?.agentId).toBe('y');
    expect(pickAgentIgnoringCapacity([], small)).toBeUndefined();
  });
});
