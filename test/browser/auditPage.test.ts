import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ACTIONS, FAILURE_CLASSES, TASK_STATUSES } from '../../contracts';
import { api, eventually, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

/** Debian's Chromium, headless; nothing is downloaded and nothing outside the test is contacted. */
const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
};

type TrailRow = { taskId: string; status: string };

describe('the audit explorer page in a browser', () => {
  const service = `svc${Date.now() % 100000}`;
  const okTask = `page-ok-${service}`;
  const failTask = `page-fail-${service}`;
  // Lands in the ledger through the playbook's output: the page must show it as text.
  const markup = '<img src=x onerror="document.title=1">';
  let stack: TestStack;
  let baseUrl: string;
  let browser: Browser;
  let page: Page;
  let trails: TrailRow[];
  const pageErrors: string[] = [];
  // The real app serves the page, so a load its content policy blocked would show up here.
  const blockedByPolicy: string[] = [];

  const finalTrail = (taskId: string) =>
    eventually(async () => {
      const res = await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`);
      const rows: TrailRow[] = res.status === 200 ? res.json.rows : [];
      return rows.some((r) => FINAL.includes(r.status)) ? rows : undefined;
    });

  beforeAll(async () => {
    stack = await startTestStack();
    baseUrl = stack.baseUrl;

    const submitted = await Promise.all([
      api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId: okTask, action: 'deploy', services: [service], playbook: 'ping.yml', extraVars: { message: markup } }),
      api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId: failTask, action: 'configure', services: [service], playbook: 'fail.yml' }),
    ]);
    expect(submitted.map((s) => s.status)).toEqual([202, 202]);
    const launched = chromium.launch(CHROMIUM);
    trails = (await Promise.all([finalTrail(okTask), finalTrail(failTask)])).flat();
    browser = await launched;
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) blockedByPolicy.push(message.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  /** [taskId, status] of every row the table shows. */
  const shownRows = (): Promise<string[][]> =>
    page.$$eval('#rows tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-task-id') ?? '', tr.getAttribute('data-status') ?? '']));

  /** Waits for the table's answer; an API error shown next to the form fails at once, with its text. */
  const waitForResults = async () => {
    await page.locator('#results-status', { hasText: /shown|No rows/ }).or(page.locator('#form-errors:visible')).waitFor();
    expect((await page.locator('#form-errors').isVisible()) ? await page.textContent('#form-errors') : '').toBe('');
  };

  test('the page and its assets are served without a token, with a strict content policy', async () => {
    const html = await fetch(`${baseUrl}/audit`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(html.headers.get('content-security-policy')).toBe(
      "default-src 'none';script-src 'self';style-src 'self';connect-src 'self';base-uri 'none';form-action 'none';frame-ancestors 'none'",
    );
    expect(html.headers.get('x-content-type-options')).toBe('nosniff');
    expect(html.headers.get('x-frame-options')).toBe('DENY');
    const script = await fetch(`${baseUrl}/audit/assets/audit.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('javascript');
    for (const asset of ['/audit/assets/lib/waitRoom.js', '/audit/vendor/chart.umd.js']) {
      const served = await fetch(`${baseUrl}${asset}`);
      expect([asset, served.status, served.headers.get('content-type')]).toEqual([asset, 200, expect.stringContaining('javascript')]);
      expect(served.headers.get('content-security-policy')).toBe(html.headers.get('content-security-policy'));
    }
    expect((await fetch(`${baseUrl}/audit/assets/%2e%2e/package.json`)).status).toBe(404);
  });

  test('the status, action and failure class lists are the API\'s, and an address keeps a value they lack', async () => {
    await page.goto(`${baseUrl}/audit?status=failed,timed_out&action=deploy`);
    // The selects are filled in document order, failure class last.
    await page.locator('#failureClass option[value="timeout"]').waitFor({ state: 'attached' });
    const options = (id: string) => page.$$eval(`#${id} option`, (all) => all.map((o) => o.textContent));
    expect(await options('status')).toEqual(['any', ...TASK_STATUSES, 'failed,timed_out']);
    expect(await options('action')).toEqual(['any', ...ACTIONS]);
    expect(await options('failureClass')).toEqual(['any', ...FAILURE_CLASSES]);
    expect(await page.inputValue('#status')).toBe('failed,timed_out');
    expect(await page.inputValue('#action')).toBe('deploy');
    expect(await page.textContent('#choices-status')).toBe('');
  });

  test('with a viewer token, a service filter shows exactly that service\'s rows, and the failed task\'s trail', async () => {
    await page.goto(`${baseUrl}/audit`);
    await page.locator('#token-message', { hasText: 'token' }).waitFor();
    await page.fill('#token', TEST_TOKENS.viewer);
    await page.click('#token-form button[type=submit]');
    await page.locator('#whoami', { hasText: 'test-viewer (viewer)' }).waitFor();
    await page.click('.view-button[data-view=rows]');
    await page.fill('#service', service);
    await page.click('#filters button[type=submit]');
    await waitForResults();

    const shown = await shownRows();
    expect([...shown].sort()).toEqual(trails.map((r) => [r.taskId, r.status]).sort());
    expect(shown).toEqual(expect.arrayContaining([[okTask, 'succeeded'], [failTask, 'failed']]));
    const address = new URL(page.url());
    expect(address.searchParams.get('service')).toBe(service);
    expect(address.searchParams.get('view')).toBe('rows');
    expect(page.url()).not.toContain(TEST_TOKENS.viewer);
    expect(await page.locator('#rows tbody tr[data-status=failed] .badge').first().textContent()).toBe('failed');

    await page.locator(`#rows tbody tr[data-task-id="${failTask}"] button.link`).first().click();
    await page.locator('#trail-status', { hasText: 'oldest first' }).waitFor();
    expect(await page.textContent('#trail-heading')).toBe(`Trail of ${failTask}`);
    expect(await page.locator('#trail .failure-message').textContent()).toContain('failed on purpose');
    expect(await page.locator('#trail .key-messages').textContent()).toContain('failed on purpose');
    expect(await page.locator('#trail .output-tail').textContent()).toContain('failed on purpose');
    expect(await page.locator('#trail dt', { hasText: 'Wall time' }).count()).toBe(1);
    expect(await page.textContent('#summary .class-application_error .summary-count')).toBe('1');
    expect(await page.textContent('#summary .summary-total .summary-count')).toBe('1');

    // Verifying rehashes the whole ledger: an admin's button (operatorPage.test.ts), not a viewer's.
    expect(await page.locator('#verify').isVisible()).toBe(false);
    expect(await page.textContent('#verify-result')).toBe('Not verified in this tab yet.');

    await page.screenshot({ path: path.join(os.tmpdir(), 'opsledger-audit-page.png'), fullPage: true });
  });

  test('a reload keeps the filters from the address and the token from the tab', async () => {
    await page.reload();
    await waitForResults();
    expect(await page.inputValue('#service')).toBe(service);
    expect(await page.inputValue('#token')).toBe('');
    expect((await shownRows()).length).toBe(trails.length);
  });

  test('data reaches the page as text, never as markup', async () => {
    await page.locator(`#rows tbody tr[data-task-id="${okTask}"] button.link`).first().click();
    await page.locator('#trail-heading', { hasText: okTask }).waitFor();
    await page.locator('#trail-status', { hasText: 'oldest first' }).waitFor();
    await page.click('#trail .output summary');
    expect(await page.locator('#trail .output-tail').textContent()).toContain(markup);
    expect(await page.locator('#trail img').count()).toBe(0);
    expect(await page.title()).toBe('opsledger audit explorer');
    await page.keyboard.press('Escape');
    await page.locator('#trail').waitFor({ state: 'hidden' });
  });

  test('a shared address opens that view, and "Load more" goes on where the page ended', async () => {
    await page.goto(`${baseUrl}/audit?service=${service}&limit=4&view=rows`);
    await waitForResults();
    expect(await page.inputValue('#limit')).toBe('4');
    const first = await shownRows();
    expect(first).toHaveLength(4);
    // Two tasks write six rows, or up to ten when another suite's dispatch hold made them wait
    // (paused, resumed): click until the last page, each click adding the rows after the last.
    for (let pages = 1; await page.locator('#more').isVisible(); pages++) {
      expect(pages).toBeLessThan(Math.ceil(trails.length / 4));
      await page.click('#more');
      await page.locator('#rows tbody tr').nth(pages * 4).waitFor();
      await waitForResults();
    }
    const all = await shownRows();
    expect(all.slice(0, 4)).toEqual(first);
    expect([...all].sort()).toEqual(trails.map((r) => [r.taskId, r.status]).sort());
  });

  test('a bad "from" is shown next to the form, naming the field', async () => {
    await page.fill('#from', 'yesterday');
    await page.click('#filters button[type=submit]');
    await page.locator('#form-errors').waitFor({ state: 'visible' });
    expect(await page.textContent('#form-errors')).toContain('From');
    expect(await page.getAttribute('#from', 'aria-invalid')).toBe('true');
    expect(await page.locator('#from-error').textContent()).not.toBe('');
    expect(await page.locator('#rows tbody tr').count()).toBe(0);
    await page.screenshot({ path: path.join(os.tmpdir(), 'opsledger-audit-page-error.png'), fullPage: true });
  });

  test('an unknown token is answered 401 and the page asks for another; forgetting it clears the tab', async () => {
    await page.fill('#from', '');
    await page.fill('#token', 'not-a-valid-token');
    await page.click('#token-form button[type=submit]');
    await page.locator('#token-message', { hasText: 'needs a valid bearer token' }).waitFor();
    expect(await page.locator('#rows tbody tr').count()).toBe(0);
    await page.click('#token-forget');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    expect(await page.textContent('#token-message')).toContain('Token forgotten');
  });

  test('the page threw no uncaught error along the way, and its content policy blocked nothing it needs', () => {
    expect(pageErrors).toEqual([]);
    expect(blockedByPolicy).toEqual([]);
  });
});
