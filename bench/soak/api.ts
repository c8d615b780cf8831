import type { SoakCluster } from './cluster';
import type { LeakScan } from './canary';

// Longer than any restart the fault part makes the API wait for.
const SUBMIT_TIMEOUT_MS = 300_000;

export type Answer = { status: number; json: unknown };

/**
 * The soak's calls to the API, as the orchestrator and the operator it plays. Every answer's body
 * is scanned for the run's secret as it arrives: the API must never hand a secret back.
 */
export type SoakApi = {
  call(method: string, pathname: string, body?: unknown): Promise<Answer>;
  /** Submits until the API takes it, for up to 5 minutes: an orchestrator retries the same task id, which is idempotent. */
  submit(body: { taskId: string } & Record<string, unknown>): Promise<void>;
};

export function soakApi(cluster: SoakCluster, scan: LeakScan): SoakApi {
  const call = async (method: string, pathname: string, body?: unknown): Promise<Answer> => {
    const res = await fetch(`${cluster.baseUrl}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${cluster.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    scan.text('API response', `${method} ${pathname}`, text);
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  return {
    call,
    async submit(body) {
      let last = 'no answer';
      for (const giveUp = Date.now() + SUBMIT_TIMEOUT_MS; Date.now() < giveUp; ) {
        const res = await call('POST', '/api/v1/tasks', body).catch((err: Error) => err);
        if (res instanceof Error) last = res.message;
        else if (res.status === 202 || res.status === 200) return;
        else if (res.status < 500 && res.status !== 429) throw new Error(`submit of ${body.taskId} refused: ${res.status} ${JSON.stringify(res.json)}`);
        else last = `${res.status} ${JSON.stringify(res.json)}`;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      throw new Error(`submit of ${body.taskId} not taken in ${SUBMIT_TIMEOUT_MS / 1000} s; last: ${last}`);
    },
  };
}
