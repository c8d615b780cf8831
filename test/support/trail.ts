import type { WaitReason } from '../../contracts';

export type TrailRow = { status: string; actor?: string; outcome?: any };

/**
 * Why a task of an in-process test stack may legitimately wait before its dispatch. Its agent has
 * reported (startTestStack waits for that) on a roomy host, so never for capacity; but the
 * dispatch hold is one switch for every pool, and admission.test.ts throws it while other suites
 * run beside it.
 */
export const IN_PROCESS_STACK_MAY_WAIT_FOR: readonly WaitReason[] = ['dispatch_hold'];

/**
 * Asserts the trail (oldest first) of a task that ran once and ended `final`: straight to dispatch,
 * or, only for one of `mayWaitFor`, paused once and resumed by the dispatcher before it.
 */
export function expectRanOnce(rows: TrailRow[], final: string, mayWaitFor: readonly WaitReason[]): void {
  const paused = rows.find((r) => r.status === 'paused');
  const expected = paused ? ['queued', 'paused', 'resumed', 'dispatched', final] : ['queued', 'dispatched', final];
  expect(rows.map((r) => r.status)).toEqual(expected);
  if (!paused) return;
  expect(mayWaitFor).toContain(paused.outcome?.reason);
  expect(rows.find((r) => r.status === 'resumed')?.actor).toBe('dispatcher');
}
