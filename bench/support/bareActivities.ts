/** The baseline's activities: as many calls as a task makes in our pipeline, each doing nothing. */
export const bareActivities = {
  async noop(_taskId: string): Promise<void> {},
};

export type BareActivities = typeof bareActivities;
