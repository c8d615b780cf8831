import type { SoakCluster } from './cluster';
import type { LeakScan } from './canary';

export type Answer = { status: number; json: unknown };

/**
 * The soak's calls to the API, as the orchestrator and the operator it plays. Every answer's body
 * is scanned for the run's secret as it arrives: the API must never hand a secret back.
 */
export type SoakApi = {
  call(method: string, pathname: string, body?: unknown): Promise<Answer>;
  /** Submits until the API takes it: an orchestrator retries the same task id, which is idempotent. */
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
      for (;;) {
        const res = await call('POST', '/api/v1/tasks', body).catch(() => undefined);
        if (res && (res.status === 202 || res.status === 200)) return;
        if (res && res.status < 500 && res.status !== 429) throw new Error(`submit of ${body.taskId} refused: ${res.status} ${JSON.stringify(res.json)}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
  };
}
