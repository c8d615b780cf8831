import type { PlaybookRunner } from '../../activities/ansibleRunner';
import type { PlaybookRun } from '../../contracts';

export type CountingNoopRunner = PlaybookRunner & {
  /** How many times the playbook of this task ran: the bench's exactly-once check. */
  runsOf(taskId: string): number;
};

/** Runs nothing and succeeds at once, behind the same interface the ansible runner has. */
export function createNoopRunner(): CountingNoopRunner {
  const runs = new Map<string, number>();
  return {
    async run(request): Promise<PlaybookRun> {
      runs.set(request.taskId, (runs.get(request.taskId) ?? 0) + 1);
      return {
        result: 'succeeded',
        exitCode: 0,
        counts: { ok: 1, changed: 0, failed: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 },
        keyMessages: [],
        steps: [{ play: 'bench', task: 'noop', status: 'ok', host: 'localhost' }],
        outputTail: [],
        resources: { cpuTimeS: 0, wallTimeS: 0, peakMemoryMb: 0, gpuVramMb: null, agentLoadPctAtDispatch: null },
      };
    },
    runsOf: (taskId) => runs.get(taskId) ?? 0,
  };
}
