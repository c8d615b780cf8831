import { proxyActivities } from '@temporalio/workflow';
import type { TaskWorkflowInput } from '../../contracts';
import type { BareActivities } from '../support/bareActivities';

// The same activity options taskWorkflow gave its shared-queue activities.
const { noop } = proxyActivities<BareActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * The fixed baseline: the shape of one admitted task before the engine-cost work, seven remote
 * activities (recordDecision queued, admit, recordDecision dispatched, estimateDuration,
 * runPlaybook, recordDecision succeeded, finishTask), each doing nothing. It no longer follows our
 * workflow: it is the yardstick the workflow's cost is measured against.
 */
export const BARE_ACTIVITIES = 7;

export async function bareWorkflow(input: TaskWorkflowInput): Promise<void> {
  for (let i = 0; i < BARE_ACTIVITIES; i += 1) await noop(input.taskId);
}
