import { z } from 'zod';

/** The longest a caller may wait in one call: shorter than the idle timeouts of common proxies. */
export const MAX_TASK_WAIT_MS = 60_000;

const DURATION = /^(\d{1,6})(ms|s|m)?$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const;

/** A wait written as `30s`, `500ms`, `1m` or bare seconds (`30`), in milliseconds. */
export const WaitDuration = z
  .string()
  .regex(DURATION, 'expected a duration like 30s, 500ms or 1m')
  .transform((text) => {
    const [, amount, unit] = DURATION.exec(text)!;
    return Number(amount) * UNIT_MS[(unit ?? 's') as keyof typeof UNIT_MS];
  })
  .refine((ms) => ms > 0 && ms <= MAX_TASK_WAIT_MS, `expected a wait above 0 and at most ${MAX_TASK_WAIT_MS / 1000}s`)
  .meta({ description: `How long to hold the answer for a change of the task, e.g. 30s (at most ${MAX_TASK_WAIT_MS / 1000}s)` });

/**
 * GET /tasks/:taskId's query. With `wait`, the answer comes when the task's ledger trail grows
 * (it changed state) or when the wait ends, whichever is first; at once for a task that has ended.
 */
export const TaskWaitQuery = z.object({ wait: WaitDuration.optional() });
export type TaskWaitQuery = z.infer<typeof TaskWaitQuery>;
