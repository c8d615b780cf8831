import client from 'prom-client';

/** One registry for the process; /metrics serves it in Prometheus text format. */
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

export const httpRequestSeconds = new client.Histogram({
  name: 'opsledger_http_request_duration_seconds',
  help: 'API request latency by route and status.',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  registers: [registry],
});

export const tasksSubmitted = new client.Counter({
  name: 'opsledger_tasks_submitted_total',
  help: 'Tasks accepted by the API, by whether the id was new or already known.',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
