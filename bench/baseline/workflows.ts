import { proxyActivities } from '@temporalio/workflow';
import type { TaskWorkflowInput } from '../../contracts';
import type { BareActivities } from '../support/bareActivities';

// The same activity options taskWorkflow gives its shared-queue activities.
const { noop } = proxyActivities<BareActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * The baseline: the same input as taskWorkflow and as many activities as one of its tasks ran
 * (the bench counts them in a warm-up task's history), none of them doing anything.
 */
export async function bareWorkflow(input: TaskWorkflowInput, activities: number): Promise<void> {
  for (let i = 0; i < activities; i += 1) await noop(input.taskId);
}
