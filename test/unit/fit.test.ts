import { describeShortfall, neverFitShortfall, pickAgent, pickAgentIgnoringCapacity, type AgentCapacity, type AgentTotals } from '../../src/admission/fit';

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

describe('neverFitShortfall', () => {
  const total = (over: Partial<AgentTotals> = {}): AgentTotals => ({ agentId: 'a', cpuCores: 4, memoryTotalMb: 8192, gpuVramTotalMb: null, ...over });

  test('null when some agent could take the task idle, however busy it is now', () => {
    expect(neverFitShortfall([total(), total({ agentId: 'gpu', gpuVramTotalMb: 81920 })], { cpu: 2, memoryMb: 8192, gpuVramMb: 40960 }, 80)).toBeNull();
  });

  test('null with no live agent: one may still come', () => {
    expect(neverFitShortfall([], { cpu: 1, memoryMb: 1, gpuVramMb: 1_000_000 }, 80)).toBeNull();
  });

  test('names the largest agent for VRAM, memory and CPU', () => {
    const agents = [total({ gpuVramTotalMb: 81920 }), total({ agentId: 'b', gpuVramTotalMb: 24576 })];
    expect(neverFitShortfall(agents, { cpu: 1, memoryMb: 64, gpuVramMb: 1_000_000 }, 80)).toBe(
      'needs 1000000 MiB GPU VRAM, the largest live agent has 80 GiB',
    );
    expect(neverFitShortfall([total()], { cpu: 1, memoryMb: 64, gpuVramMb: 1024 }, 80)).toBe('needs 1 GiB GPU VRAM, no live agent has a GPU');
    expect(neverFitShortfall([total()], { cpu: 1, memoryMb: 16384, gpuVramMb: 0 }, 80)).toBe('needs 16 GiB memory, the largest live agent has 8 GiB');
    expect(neverFitShortfall([total()], { cpu: 4, memoryMb: 64, gpuVramMb: 0 }, 80)).toBe(
      'needs 4 CPU, the largest live agent has 4 cores (80% load threshold)',
    );
  });

  test('each need met by some agent but none meeting all together', () => {
    const agents = [total({ memoryTotalMb: 1024, gpuVramTotalMb: 81920 }), total({ agentId: 'b', memoryTotalMb: 65536 })];
    expect(neverFitShortfall(agents, { cpu: 1, memoryMb: 32768, gpuVramMb: 1024 }, 80)).toBe(
      'no single live agent has the CPU, memory and GPU VRAM together, even idle',
    );
  });
});
