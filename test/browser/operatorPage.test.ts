import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { api, eventually, IDLE_HOST, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

/** Debian's Chromium, headless; nothing is downloaded and nothing outside the test is contacted. */
const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
};

// Kept after the run, beside the audit page test's own screenshots.
const SCREENSHOTS = path.join(os.tmpdir(), 'opsledger-operator-page');

type ChartData = { labels: string[]; datasets: { label: string; data: number[] }[] };
type Row = { id: string; taskId: string; status: string; actor: string; outcome: Record<string, unknown> | null };

/**
 * The operator's page against the real API, a worker and real ansible-playbook runs: tasks first,
 * the kuma week, a trail, the failure chart, the wait room as a viewer and as an operator, the
 * export, and the chain check of an admin.
 */
describe('the operator\'s page in a browser', () => {
  const service = `op${Date.now() % 100000}`;
  const okTask = `op-ok-${service}`;
  const failTask = `op-fail-${service}`;
  const otherTask = `op-other-${service}`;
  const waitingTask = `op-waits-${service}`;
  let stack: TestStack;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const blockedByPolicy: string[] = [];

  const trail = async (taskId: string): Promise<Row[]> => {
    const res = await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`);
    return res.status === 200 ? res.json.rows : [];
  };
  const untilTrail = (taskId: string, done: (rows: Row[]) => boolean) =>
    eventually(async () => {
      const rows = await trail(taskId);
      return done(rows) ? rows : undefined;
    });
  const submit = (body: Record<string, unknown>) => api(stack.baseUrl, 'POST', '/api/v1/tasks', { playbook: 'ping.yml', ...body });

  beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    // Room for the three small tasks at once, not for the big one: it waits for capacity.
    stack = await startTestStack({ host: { ...IDLE_HOST, memoryFreeMb: 1024 } });
    const submitted = await Promise.all([
      submit({ taskId: okTask, action: 'deploy', services: ['kuma', service], plan: { estimatedDurationS: 30 } }),
      submit({ taskId: failTask, action: 'configure', services: ['kuma', service], playbook: 'fail.yml' }),
      submit({ taskId: otherTask, action: 'restart', services: [service] }),
      submit({ taskId: waitingTask, action: 'update', services: ['kuma', service], requirements: { cpu: 0.1, memoryMb: 4096, gpuVramMb: 0 } }),
    ]);
    expect(submitted.map((s) => s.status)).toEqual([202, 202, 202, 202]);
    const launched = chromium.launch(CHROMIUM);
    await Promise.all([
      ...[okTask, failTask, otherTask].map((id) => untilTrail(id, (rows) => rows.some((r) => FINAL.includes(r.status)))),
      untilTrail(waitingTask, (rows) => rows.some((r) => r.status === 'paused')),
    ]);
    browser = await launched;
    page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) blockedByPolicy.push(message.text());
    });
  });

  afterAll(async () => {
    await api(stack.baseUrl, 'POST', `/api/v1/tasks/${waitingTask}/cancel`, {}).catch(() => undefined);
    await browser?.close();
    await stack?.close();
  });

  const signIn = async (role: 'viewer' | 'operator' | 'admin') => {
    await page.goto(`${stack.baseUrl}/audit`);
    await page.fill('#token', TEST_TOKENS[role]);
    await page.click('#token-form button[type=submit]');
    await page.locator('#whoami', { hasText: `(${role})` }).waitFor();
  };
  const shown = (table: string) =>
    page.$$eval(`#${table} tbody tr`, (trs) => trs.map((tr) => [tr.getAttribute('data-task-id') ?? '', tr.getAttribute('data-status') ?? '']));
  const waitForResults = async () => {
    await page.locator('#results-status', { hasText: /shown|No / }).or(page.locator('#form-errors:visible')).waitFor();
    expect((await page.locator('#form-errors').isVisible()) ? await page.textContent('#form-errors') : '').toBe('');
  };
  /** What Chart.js drew on a canvas: its labels and datasets. */
  const chartData = (id: string) =>
    page.$eval(`#${id}`, (canvas) => {
      const { Chart } = globalThis as unknown as { Chart: { getChart(c: unknown): { data: ChartData } } };
      const { labels, datasets } = Chart.getChart(canvas).data;
      return { labels, datasets: datasets.map((d) => ({ label: d.label, data: d.data })) };
    });
  const queueRow = (taskId: string) => page.locator(`#queue tbody tr[data-task-id="${taskId}"]`);

  test('signed in as a viewer, the page opens on tasks; "kuma, past week" shows exactly the API\'s lines, one per task', async () => {
    await signIn('viewer');
    expect(await page.getAttribute('.view-button[data-view=tasks]', 'aria-pressed')).toBe('true');
    await page.fill('#service', 'kuma');
    const answer = page.waitForResponse((r) => r.url().includes('/api/v1/audit/tasks?') && r.url().includes('service=kuma'));
    await page.click('.preset[data-from="7d"]');
    const body = await (await answer).json();
    await waitForResults();

    // Other suites write kuma tasks into this ledger too: the page must show exactly what the API answered.
    expect(await shown('tasks')).toEqual(body.tasks.map((t: { taskId: string; status: string }) => [t.taskId, t.status]));
    const weekAgo = Date.now() - 7 * 24 * 3600_000;
    for (const line of body.tasks) {
      expect(line.services).toContain('kuma');
      expect(Date.parse(line.lastAt)).toBeGreaterThan(weekAgo);
    }
    const mine = Object.fromEntries(
      body.tasks.filter((t: { taskId: string }) => t.taskId.endsWith(service)).map((t: { taskId: string; status: string }) => [t.taskId, t.status]),
    );
    expect(mine).toEqual({ [okTask]: 'succeeded', [failTask]: 'failed', [waitingTask]: 'paused' });
    const address = new URL(page.url());
    expect(Object.fromEntries(address.searchParams)).toEqual({ service: 'kuma', from: '7d' });

    // The same filter as ledger rows: one click away, and again exactly the API's rows.
    const rowsAnswer = page.waitForResponse((r) => /\/api\/v1\/audit\?/.test(r.url()) && r.url().includes('service=kuma'));
    await page.click('.view-button[data-view=rows]');
    const rows = await (await rowsAnswer).json();
    await waitForResults();
    expect(await shown('rows')).toEqual(rows.rows.map((r: Row) => [r.taskId, r.status]));
    expect(new URL(page.url()).searchParams.get('view')).toBe('rows');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'kuma-week-rows.png'), fullPage: true });
  });

  test('a trail tells each decision, with the estimate beside the wall time, the row hash and the actor of record', async () => {
    await page.goto(`${stack.baseUrl}/audit?service=${service}`);
    await waitForResults();
    expect((await shown('tasks')).map(([id]) => id).sort()).toEqual([failTask, okTask, otherTask, waitingTask].sort());
    await page.locator(`#tasks tbody tr[data-task-id="${okTask}"] button.link`).click();
    await page.locator('#trail-status', { hasText: 'oldest first' }).waitFor();
    const decisions = await page.$$eval('#trail .decision', (ps) => ps.map((p) => p.textContent));
    expect(decisions[0]).toBe('Queued by test-admin.');
    expect(decisions).toContainEqual(expect.stringMatching(/^Dispatched to agent-\w+ at [\d.]+ % load\.$/));
    expect(decisions[decisions.length - 1]).toMatch(/^Succeeded on agent-\w+ \(result succeeded\)\.$/);
    expect(await page.textContent('#trail .trail-row[data-status=succeeded] .estimate')).toMatch(/^Estimated 30 s, took [\d.]+ s \(\d+ % under\)\.$/);
    const hashes = await page.$$eval('#trail .row-hash', (codes) => codes.map((c) => c.getAttribute('title')));
    expect(hashes).toEqual((await trail(okTask)).map((r) => (r as unknown as { rowHash: string }).rowHash));
    expect(await page.locator('#trail dt', { hasText: 'Actor of record' }).count()).toBe(hashes.length);
    // A viewer is not told where the Temporal UI is.
    expect(await page.locator('#trail-temporal a').count()).toBe(0);

    await page.locator(`#tasks tbody tr[data-task-id="${failTask}"] button.link`).click();
    await page.locator('#trail-heading', { hasText: failTask }).waitFor();
    await page.locator('#trail-status', { hasText: 'oldest first' }).waitFor();
    expect(await page.textContent('#trail .failure-message')).toContain('failed on purpose');
    expect(await page.textContent('#trail .output-tail')).toContain('failed on purpose');
  });

  test('the failure chart shows the seeded classes, and the activity chart the seeded service', async () => {
    await page.locator('#activity-status', { hasText: 'interval' }).waitFor();
    const [failures, activity] = await Promise.all(['failure-chart', 'activity-chart'].map(chartData));
    const charts = {
      failures: Object.fromEntries(failures!.labels.map((label, i) => [label, failures!.datasets[0]!.data[i]])),
      activity: activity!.datasets.map((d) => [d.label, d.data.reduce((a, b) => a + b, 0)]),
    };
    expect(charts.failures).toEqual({ 'resource constraint': 0, 'application error': 1, infrastructure: 0, timeout: 0, cancelled: 0 });
    const seededRows = (await Promise.all([okTask, failTask, otherTask, waitingTask].map(trail))).flat().length;
    expect(charts.activity).toEqual([[service, seededRows]]);
    expect(await page.textContent('#summary .class-application_error .summary-count')).toBe('1');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'tasks-and-charts-1280.png'), fullPage: true });
  });

  test('the export downloads exactly the rows the API lists for the filter, as NDJSON and as CSV', async () => {
    const ndjson = page.waitForEvent('download');
    await page.click('#export-ndjson');
    const file = await (await ndjson).path();
    const exported = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line));
    const listed = (await api(stack.baseUrl, 'GET', `/api/v1/audit?service=${service}&limit=500`, undefined, TEST_TOKENS.viewer)).json.rows;
    expect(exported).toEqual(listed);
    await page.locator('#export-status', { hasText: 'downloaded' }).waitFor();

    const csv = page.waitForEvent('download');
    await page.click('#export-csv');
    const lines = fs.readFileSync(await (await csv).path(), 'utf8').split('\r\n');
    expect(lines[0]!.split(',').slice(0, 3)).toEqual(['id', 'taskId', 'runId']);
    expect(lines.filter((line) => /^\d+,op-/.test(line)).map((line) => line.split(',')[0])).toEqual(listed.map((r: Row) => r.id));
  });

  test('a viewer sees the wait room, the queue and the agents, and no button that acts', async () => {
    await page.click('.view-button[data-view=wait]');
    const row = queueRow(waitingTask);
    await row.waitFor();
    expect(await row.getAttribute('data-reason')).toBe('capacity');
    expect(await row.textContent()).toMatch(/memory/i);
    await page.locator(`#agents tbody tr[data-agent-id="${stack.config.OPSLEDGER_AGENT_ID}"]`, { hasText: 'live' }).waitFor();
    expect(await page.locator('#wait-room button.command').count()).toBe(0);
    expect(await page.locator('#dispatch-toggle').isVisible()).toBe(false);
    expect(await page.locator('#verify').isVisible()).toBe(false);
    expect(await page.locator('#temporal-paused').isVisible()).toBe(false);
    expect(await page.locator('#wait-room a.temporal-link:visible').count()).toBe(0);
    expect(new URL(page.url()).searchParams.get('view')).toBe('wait');
  });

  test('an operator holds and resumes a waiting task from the wait room, each confirmed, and sees the rows it wrote', async () => {
    await signIn('operator');
    await page.click('.view-button[data-view=wait]');
    const row = queueRow(waitingTask);
    await row.waitFor();
    expect(await row.locator('a.temporal-link').getAttribute('href')).toBe(`http://localhost:8233/namespaces/default/workflows/${waitingTask}`);
    expect(await page.getAttribute('#temporal-paused', 'href')).toBe(
      `http://localhost:8233/namespaces/default/workflows?query=${encodeURIComponent("OpsStatus='paused'")}`,
    );

    // The dispatch switch asks first; Escape answers no, and nothing is held.
    await page.click('#dispatch-toggle');
    await page.locator('#confirm').waitFor();
    expect(await page.textContent('#confirm-text')).toContain('Hold all dispatch');
    await page.keyboard.press('Escape');
    await page.locator('#confirm').waitFor({ state: 'hidden' });
    expect(await page.textContent('#dispatch-state')).toContain('Dispatch is running');

    await row.locator('button[data-command=pause]').click();
    expect(await page.textContent('#confirm-text')).toBe(`Hold task ${waitingTask}? It keeps its place but is not resumed by itself.`);
    await page.fill('#confirm-reason', 'maintenance window');
    await page.click('#confirm-yes');
    await page.locator('#command-result', { hasText: `Task ${waitingTask} held` }).waitFor();
    await page.locator(`#queue tbody tr[data-task-id="${waitingTask}"][data-reason=operator_hold]`).waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'wait-room-held.png'), fullPage: true });

    await row.locator('button[data-command=resume]').click();
    await page.click('#confirm-yes');
    await page.locator('#command-result', { hasText: `Task ${waitingTask} released` }).waitFor();
    await page.locator(`#queue tbody tr[data-task-id="${waitingTask}"][data-reason=capacity]`).waitFor();

    const rows = await untilTrail(waitingTask, (all) => all.some((r) => r.status === 'resumed'));
    const byOperator = rows.filter((r) => r.actor === 'test-operator').map((r) => [r.status, r.outcome?.reason ?? r.outcome?.from]);
    expect(byOperator).toEqual([['paused', 'operator_hold'], ['resumed', 'operator_hold']]);

    // From the wait room to the task's rows and trail, where those rows show.
    await row.locator('button.link').click();
    await page.locator('#trail-status', { hasText: 'oldest first' }).waitFor();
    const decisions = await page.$$eval('#trail .decision', (ps) => ps.map((p) => p.textContent));
    expect(decisions).toEqual(expect.arrayContaining(['Paused before dispatch (operator hold) by test-operator.', 'Hold released by test-operator.']));
    expect(await page.locator('#trail-temporal a.temporal-link').getAttribute('href')).toContain(`/workflows/${waitingTask}`);
    await waitForResults();
    expect(new URL(page.url()).searchParams.get('taskId')).toBe(waitingTask);
    expect((await shown('rows')).filter(([, status]) => status === 'paused' || status === 'resumed').length).toBeGreaterThanOrEqual(3);
  });

  test('an operator cancels the task from the wait room; it leaves the queue', async () => {
    await page.click('.view-button[data-view=wait]');
    const row = queueRow(waitingTask);
    await row.locator('button[data-command=cancel]').click();
    await page.click('#confirm-yes');
    await page.locator('#command-result', { hasText: `Task ${waitingTask} cancelled` }).waitFor();
    await row.waitFor({ state: 'detached' });
    await untilTrail(waitingTask, (rows) => rows.some((r) => r.status === 'cancelled' && r.actor === 'test-operator'));
  });

  test('an admin runs the chain check; the page keeps its last result for the tab', async () => {
    await signIn('admin');
    await page.click('#verify');
    await page.locator('#verify-result', { hasText: /checked in/ }).waitFor();
    // Other suites append meanwhile, so only that the check ran and reported is certain here.
    expect(await page.textContent('#verify-result')).toMatch(/^Chain (intact: \d+ rows? checked in [\d.]+ ms\.|BROKEN at chain row \d+ )/);
    await page.reload();
    await page.locator('#verify-result', { hasText: /checked in/ }).waitFor();
  });

  test('at a phone\'s width nothing but the tables scrolls sideways', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${stack.baseUrl}/audit?service=${service}`);
    await waitForResults();
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'tasks-phone.png'), fullPage: true });
  });

  test('the page threw no uncaught error along the way, and its content policy blocked nothing it needs', () => {
    expect(pageErrors).toEqual([]);
    expect(blockedByPolicy).toEqual([]);
  });
});
