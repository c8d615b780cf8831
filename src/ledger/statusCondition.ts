import { TASK_STATUSES, type TaskStatus } from '../../contracts';

/**
 * Statuses written out as literals, so that the planner can prove a set of failure statuses implies
 * the predicate of tasks_failures_created_at_id_idx whatever plan it makes (a parameter proves
 * nothing in a generic plan). Each value is checked against the status enum first.
 */
export function statusCondition(statuses: readonly TaskStatus[]): string {
  const literals = statuses.map((status) => {
    if (!(TASK_STATUSES as readonly string[]).includes(status)) throw new Error(`not a task status: ${status}`);
    return `'${status}'`;
  });
  return `t.status IN (${literals.join(', ')})`;
}
