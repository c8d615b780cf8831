import { z } from 'zod';
import {
  ACTIONS,
  AgentList,
  AuditPage,
  ByService,
  FAILURE_CLASSES,
  FailureSummary,
  IntentCounts,
  LedgerVerification,
  LiveTask,
  PauseQueue,
  ServiceDetail,
  SubmitTaskResponse,
  TASK_STATUSES,
  TaskTrail,
  WAIT_REASONS,
} from '../../contracts';
import { api, eventually, startTestStack, type TestStack } from '../support/stack';

type Response = { content?: Record<string, { schema?: unknown }> };
type Document = {
  paths: Record<string, Record<string, { responses: Record<string, Response> }>>;
  components: { schemas: Record<string, { enum?: unknown[] }> };
};

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

describe('the OpenAPI document describes what the API answers', () => {
  const service = `oas${Date.now() % 100000}`;
  const okTask = `oas-ok-${service}`;
  const failTask = `oas-fail-${service}`;
  let stack: TestStack;
  let doc: Document;
  let submitted: { status: number; json: unknown }[];

  beforeAll(async () => {
    stack = await startTestStack();
    submitted = await Promise.all([
      api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId: okTask, action: 'deploy', services: [service], playbook: 'ping.yml' }),
      api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId: failTask, action: 'configure', services: [service], playbook: 'fail.yml' }),
    ]);
    // Without a token, as the audit page reads it before the reader gives one.
    doc = (await api(stack.baseUrl, 'GET', '/api/v1/openapi.json', undefined, null)).json;
    await Promise.all(
      [okTask, failTask].map((taskId) =>
        eventually(async () => {
          const res = await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`);
          const rows: { status: string }[] = res.status === 200 ? res.json.rows : [];
          return rows.some((r) => FINAL.includes(r.status)) ? true : undefined;
        }),
      ),
    );
  });
  afterAll(() => stack?.close());

  const documented = (path: string, method: string, status: string) =>
    doc.paths[path]?.[method]?.responses[status]?.content?.['application/json']?.schema;
  const ref = (schema: z.ZodType) => ({ $ref: `#/components/schemas/${z.globalRegistry.get(schema)?.id}` });

  test('every operation has a 2xx answer, and each one with a body has a schema for each media type it answers', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation })),
    );
    expect(operations.map((o) => o.name)).toEqual(expect.arrayContaining(['GET /readyz', 'GET /api/v1/audit', 'GET /api/v1/agents']));
    const undescribed = operations.filter(({ operation }) => {
      const success = Object.entries(operation.responses).filter(([status]) => /^2\d\d$/.test(status));
      // 204 No Content has no body to describe; the export answers CSV or NDJSON, everything else JSON.
      const described = (r: { content?: Record<string, { schema?: unknown }> }) =>
        Object.keys(r.content ?? {}).length > 0 && Object.values(r.content ?? {}).every((media) => media.schema);
      return success.length === 0 || success.some(([status, r]) => status !== '204' && !described(r));
    });
    expect(undescribed.map((o) => o.name)).toEqual([]);
  });

  test('the enums the audit page lists are the contracts\' own', () => {
    const enumOf = (id: string) => doc.components.schemas[id]?.enum;
    expect(enumOf('TaskStatus')).toEqual([...TASK_STATUSES]);
    expect(enumOf('Action')).toEqual([...ACTIONS]);
    expect(enumOf('FailureClass')).toEqual([...FAILURE_CLASSES]);
    expect(enumOf('WaitReason')).toEqual([...WAIT_REASONS]);
  });

  test('live answers parse, unchanged, with the very schemas the document names', async () => {
    expect(submitted.map((s) => s.status)).toEqual([202, 202]);
    expect(documented('/api/v1/tasks', 'post', '202')).toEqual(ref(SubmitTaskResponse));
    for (const s of submitted) expect(SubmitTaskResponse.parse(s.json)).toEqual(s.json);

    const cases: [template: string, path: string, schema: z.ZodType][] = [
      ['/api/v1/tasks/{taskId}', `/api/v1/tasks/${okTask}`, LiveTask],
      ['/api/v1/audit', `/api/v1/audit?service=${service}`, AuditPage],
      ['/api/v1/audit/failures', `/api/v1/audit/failures?service=${service}`, AuditPage],
      ['/api/v1/audit/failures/summary', `/api/v1/audit/failures/summary?service=${service}`, FailureSummary],
      ['/api/v1/audit/by-service', '/api/v1/audit/by-service?from=1h', ByService],
      ['/api/v1/audit/by-service/{service}', `/api/v1/audit/by-service/${service}`, ServiceDetail],
      ['/api/v1/audit/intents', `/api/v1/audit/intents?service=${service}`, IntentCounts],
      ['/api/v1/audit/tasks/{taskId}', `/api/v1/audit/tasks/${failTask}`, TaskTrail],
      ['/api/v1/audit/verify', '/api/v1/audit/verify', LedgerVerification],
      ['/api/v1/agents', '/api/v1/agents', AgentList],
      ['/api/v1/pause-queue', '/api/v1/pause-queue', PauseQueue],
    ];
    for (const [template, path, schema] of cases) {
      const res = await api(stack.baseUrl, 'GET', path);
      expect([path, res.status]).toEqual([path, 200]);
      expect([path, documented(template, 'get', '200')]).toEqual([path, ref(schema)]);
      // Parsing drops keys a schema does not declare, so equality also proves nothing is left undescribed.
      expect(schema.parse(res.json)).toEqual(res.json);
    }

    const failures: AuditPage = (await api(stack.baseUrl, 'GET', `/api/v1/audit/failures?service=${service}`)).json;
    expect(failures.rows.map((r) => [r.taskId, r.status, r.failureClass])).toEqual([[failTask, 'failed', 'application_error']]);
  });
});
