import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ms } from './stats';

const { EventType, TimeoutType } = temporal.api.enums.v1;

/**
 * What went wrong inside one workflow, from its Temporal history: timed-out or failed activities
 * (with the activity's name) and workflow tasks. The ledger does not record infrastructure
 * retries, so this is where a second dispatch is explained.
 */
export async function historyTrouble(client: Client, workflowId: string): Promise<string[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const activityNames = new Map<string, string>();
  const trouble: string[] = [];
  for (const event of events) {
    const id = String(event.eventId);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) activityNames.set(id, scheduled.activityType?.name ?? '?');
    const timedOut = event.activityTaskTimedOutEventAttributes;
    if (timedOut) {
      const type = timedOut.failure?.timeoutFailureInfo?.timeoutType;
      trouble.push(
        `${activityNames.get(String(timedOut.scheduledEventId)) ?? 'activity'} timed out (${type === undefined || type === null ? '?' : TimeoutType[type]})`,
      );
    }
    const failed = event.activityTaskFailedEventAttributes;
    if (failed) trouble.push(`${activityNames.get(String(failed.scheduledEventId)) ?? 'activity'} failed: ${failed.failure?.message ?? '?'}`);
    if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT) trouble.push('workflow task timed out');
    if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) {
      trouble.push(`workflow task failed: ${event.workflowTaskFailedEventAttributes?.failure?.message ?? '?'}`);
    }
  }
  return trouble;
}

export type HistoryShape = {
  events: number;
  workflowTasks: number;
  /** Activities through the server, by name. */
  activities: string[];
  /** Local activities (marker events named by the SDK), by name. */
  localActivities: string[];
  searchAttributeUpserts: number;
};

/**
 * How much one workflow asked of Temporal: its history length, its workflow tasks, its remote and
 * local activities by name, its search-attribute upserts.
 */
export async function historyShape(client: Client, workflowId: string): Promise<HistoryShape> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const count = (type: number) => events.filter((event) => event.eventType === type).length;
  return {
    events: events.length,
    workflowTasks: count(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
    activities: events.flatMap((event) => event.activityTaskScheduledEventAttributes?.activityType?.name ?? []),
    localActivities: events.flatMap((event) => localActivityName(event.markerRecordedEventAttributes) ?? []),
    searchAttributeUpserts: count(EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
  };
}

type MarkerAttributes = temporal.api.history.v1.IMarkerRecordedEventAttributes | null | undefined;

/** A local activity's marker carries its name in the JSON payload of its `data` detail. */
function localActivityName(marker: MarkerAttributes): string | undefined {
  if (marker?.markerName !== 'core_local_activity') return undefined;
  const data = marker.details?.data?.payloads?.[0]?.data;
  if (!data) return 'local activity';
  try {
    const parsed = JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type?: string; activityType?: string };
    return parsed.activity_type ?? parsed.activityType ?? 'local activity';
  } catch {
    return 'local activity';
  }
}

type Timestamp = { seconds?: { toString(): string } | number | null; nanos?: number | null } | null | undefined;

function msOf(ts: Timestamp): number {
  return ts ? Number(String(ts.seconds ?? 0)) * 1000 + (ts.nanos ?? 0) / 1e6 : NaN;
}

/** Per step of a task: how long it waited to be picked up and how long it ran, in ms. */
export type StepTimings = Map<string, { wait: number[]; run: number[] }>;

/**
 * Where a task's wall time goes, from the histories of `workflowIds`: every activity by name
 * (scheduled -> started is the wait for a worker, started -> completed the run), every workflow
 * task (likewise), and the whole task from start to completion.
 */
export async function stepTimings(client: Client, workflowIds: string[]): Promise<StepTimings> {
  const steps: StepTimings = new Map();
  const add = (step: string, wait: number, run: number) => {
    const entry = steps.get(step) ?? { wait: [], run: [] };
    entry.wait.push(wait);
    entry.run.push(run);
    steps.set(step, entry);
  };
  for (const workflowId of workflowIds) {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const at = new Map(events.map((event) => [String(event.eventId), msOf(event.eventTime)]));
    const names = new Map<string, string>();
    let workflowTaskScheduled = NaN;
    let workflowTaskStarted = NaN;
    for (const event of events) {
      const id = String(event.eventId);
      const time = msOf(event.eventTime);
      if (event.activityTaskScheduledEventAttributes) names.set(id, event.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
      const completed = event.activityTaskCompletedEventAttributes;
      if (completed) {
        const scheduledAt = at.get(String(completed.scheduledEventId)) ?? NaN;
        const startedAt = at.get(String(completed.startedEventId)) ?? NaN;
        add(`activity ${names.get(String(completed.scheduledEventId)) ?? '?'}`, startedAt - scheduledAt, time - startedAt);
      }
      if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) workflowTaskScheduled = time;
      if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) workflowTaskStarted = time;
      if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
        add('workflow task', workflowTaskStarted - workflowTaskScheduled, time - workflowTaskStarted);
      }
    }
    const first = msOf(events[0]?.eventTime);
    const last = msOf(events[events.length - 1]?.eventTime);
    add('whole task', 0, last - first);
  }
  return steps;
}

/**
 * One line a step, `label` before its name: how many times it ran a `unit` of `count`, its mean
 * wait to be picked up and its mean run; for the whole task, its mean length.
 */
export function stepLines(steps: StepTimings, count: number, unit: string, label = ''): string[] {
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
  return [...steps].map(([step, { wait, run }]) => {
    const times = step === 'whole task' ? ms(mean(run)) : `${(wait.length / count).toFixed(0)}x a ${unit}, wait ${ms(mean(wait))}, run ${ms(mean(run))}`;
    return `${`${label}${step}`.padEnd(28)} ${times}`;
  });
}
