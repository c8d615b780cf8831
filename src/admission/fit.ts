/** Pure admission arithmetic: does a task fit an agent, and which agent has the most room. */
import type { Requirements } from '../../contracts';

export interface AgentCapacity {
  agentId: string;
  taskQueue: string;
  cpuCores: number;
  loadPct: number;
  memoryFreeMb: number;
  gpuVramFreeMb: number | null;
  /** What admitted, unfinished tasks already hold on this agent. */
  reserved: Requirements;
}

export type Pick =
  | { fits: true; agent: AgentCapacity; loadAfterPct: number }
  | { fits: false; shortfall: string };

/** CPU a task needs, as load % of the agent's cores, on top of what the agent reports. */
export function loadAfter(agent: AgentCapacity, needs: Requirements): number {
  return agent.loadPct + (100 * (agent.reserved.cpu + needs.cpu)) / agent.cpuCores;
}

export function memoryLeft(agent: AgentCapacity, needs: Requirements): number {
  return agent.memoryFreeMb - agent.reserved.memoryMb - needs.memoryMb;
}

export function vramLeft(agent: AgentCapacity, needs: Requirements): number | null {
  if (needs.gpuVramMb === 0) return 0;
  if (agent.gpuVramFreeMb === null) return null;
  return agent.gpuVramFreeMb - agent.reserved.gpuVramMb - needs.gpuVramMb;
}

export function fits(agent: AgentCapacity, needs: Requirements, thresholdPct: number): boolean {
  const vram = vramLeft(agent, needs);
  return loadAfter(agent, needs) <= thresholdPct && memoryLeft(agent, needs) >= 0 && vram !== null && vram >= 0;
}

/**
 * The agent with the most headroom after the task (lowest resulting load, then most memory
 * left) among those it fits; otherwise a shortfall an operator can act on.
 */
export function pickAgent(agents: AgentCapacity[], needs: Requirements, thresholdPct: number): Pick {
  const candidates = agents
    .filter((a) => fits(a, needs, thresholdPct))
    .sort((a, b) => loadAfter(a, needs) - loadAfter(b, needs) || memoryLeft(b, needs) - memoryLeft(a, needs));
  const best = candidates[0];
  if (best) return { fits: true, agent: best, loadAfterPct: round1(loadAfter(best, needs)) };
  return { fits: false, shortfall: describeShortfall(agents, needs, thresholdPct) };
}

/** Override: the live agent with the most headroom, whatever the threshold says. */
export function pickAgentIgnoringCapacity(agents: AgentCapacity[], needs: Requirements): AgentCapacity | undefined {
  return [...agents].sort((a, b) => loadAfter(a, needs) - loadAfter(b, needs))[0];
}

export function describeShortfall(agents: AgentCapacity[], needs: Requirements, thresholdPct: number): string {
  if (agents.length === 0) return 'no live agent';
  if (needs.gpuVramMb > 0) {
    const best = Math.max(...agents.map((a) => (a.gpuVramFreeMb === null ? -1 : a.gpuVramFreeMb - a.reserved.gpuVramMb)));
    if (best < 0) return `needs ${mib(needs.gpuVramMb)} GPU VRAM, no live agent has a GPU`;
    if (best < needs.gpuVramMb) return `needs ${mib(needs.gpuVramMb)} GPU VRAM, best agent has ${mib(best)}`;
  }
  const bestMemory = Math.max(...agents.map((a) => a.memoryFreeMb - a.reserved.memoryMb));
  if (bestMemory < needs.memoryMb) return `needs ${mib(needs.memoryMb)} memory, best agent has ${mib(Math.max(0, bestMemory))}`;
  const lowestLoad = Math.min(...agents.map((a) => loadAfter(a, needs)));
  if (lowestLoad > thresholdPct) {
    return `needs ${needs.cpu} CPU, every agent would be above ${thresholdPct}% load (best ${round1(lowestLoad)}%)`;
  }
  return 'no single agent has the CPU, memory and GPU VRAM together';
}

function mib(mb: number): string {
  return mb >= 1024 && mb % 1024 === 0 ? `${mb / 1024} GiB` : `${Math.round(mb)} MiB`;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** What an agent has in all, idle: its totals as it last reported them. */
export interface AgentTotals {
  agentId: string;
  cpuCores: number;
  memoryTotalMb: number;
  gpuVramTotalMb: number | null;
}

/**
 * Why no agent could take the task even idle (load 0, nothing reserved, all memory and VRAM
 * free), or null when some agent could, or there is no agent to judge by.
 */
export function neverFitShortfall(agents: AgentTotals[], needs: Requirements, thresholdPct: number): string | null {
  if (agents.length === 0) return null;
  const couldFit = (a: AgentTotals) =>
    (100 * needs.cpu) / a.cpuCores <= thresholdPct &&
    needs.memoryMb <= a.memoryTotalMb &&
    (needs.gpuVramMb === 0 || (a.gpuVramTotalMb !== null && needs.gpuVramMb <= a.gpuVramTotalMb));
  if (agents.some(couldFit)) return null;
  if (needs.gpuVramMb > 0) {
    const most = Math.max(...agents.map((a) => a.gpuVramTotalMb ?? -1));
    if (most < 0) return `needs ${mib(needs.gpuVramMb)} GPU VRAM, no live agent has a GPU`;
    if (most < needs.gpuVramMb) return `needs ${mib(needs.gpuVramMb)} GPU VRAM, the largest live agent has ${mib(most)}`;
  }
  const mostMemory = Math.max(...agents.map((a) => a.memoryTotalMb));
  if (mostMemory < needs.memoryMb) return `needs ${mib(needs.memoryMb)} memory, the largest live agent has ${mib(mostMemory)}`;
  const mostCores = Math.max(...agents.map((a) => a.cpuCores));
  if ((100 * needs.cpu) / mostCores > thresholdPct) {
    return `needs ${needs.cpu} CPU, the largest live agent has ${mostCores} cores (${thresholdPct}% load threshold)`;
  }
  return 'no single live agent has the CPU, memory and GPU VRAM together, even idle';
}
