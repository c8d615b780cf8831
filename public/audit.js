/*
 * The audit explorer: tasks first, the ledger's rows one click away, a task's trail, the wait
 * room, pictures of the period, export and the chain's status. Every call is a REST call the CLI
 * could make; what the token's role may not do is not offered.
 */
import { ApiProblem, apiDownload, apiGet, forgetToken, keepToken, storedToken } from './lib/api.js';
import { $, badge, breakable, duration, el, list, localTime, plural } from './lib/dom.js';
import { drawActivity, drawFailures } from './lib/charts.js';
import { trailRowElement } from './lib/trail.js';
import { createWaitRoom } from './lib/waitRoom.js';

const API = '/api/v1/audit';
const OPENAPI = '/api/v1/openapi.json';
const FILTERS = ['status', 'service', 'intent', 'action', 'failureClass', 'agent', 'taskId', 'changed', 'from', 'to', 'limit'];
const VIEWS = ['tasks', 'rows', 'wait'];
const GRANTS = { viewer: ['viewer', 'operator', 'orchestrator', 'admin'], operator: ['operator', 'admin'], admin: ['admin'] };
const LAST_VERIFY_KEY = 'opsledger.lastVerify';

const state = { generation: 0, nextCursor: null, query: null, shown: 0, trailOpener: null, view: 'tasks', whoami: null };

const may = (needed) => Boolean(state.whoami && GRANTS[needed].includes(state.whoami.role));

const waitRoom = createWaitRoom({ may, openTrail: (taskId, opener) => openTrail(taskId, opener), explain, temporalUi: () => state.whoami?.temporalUi ?? null });

// ---- token and role ------------------------------------------------------------------------

function askForToken(message) {
  $('token-message').textContent = message;
  $('token-message').className = 'token-message warning';
  $('token').focus();
}

/** Offers only what the role may do; the API refuses the rest anyway. */
function applyRole() {
  for (const node of document.querySelectorAll('[data-needs]')) node.hidden = !may(node.dataset.needs);
  $('whoami').textContent = state.whoami ? `Signed in as ${state.whoami.name} (${state.whoami.role}).` : '';
}

async function learnRole() {
  try {
    state.whoami = await apiGet('/api/v1/whoami');
  } catch (error) {
    state.whoami = null;
    explain(error, () => undefined);
  }
  applyRole();
}

async function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  if (!token) {
    askForToken('Enter a bearer token first.');
    return;
  }
  keepToken(token);
  $('token').value = '';
  $('token-message').textContent = 'Token kept for this tab.';
  $('token-message').className = 'token-message';
  await learnRole();
  search({ push: false });
}

function signOut() {
  forgetToken();
  $('token').value = '';
  state.generation += 1;
  state.whoami = null;
  applyRole();
  clearResults();
  closeTrail();
  waitRoom.stop();
  askForToken('Token forgotten: signed out. Enter a token to load the ledger.');
}

/** Says what went wrong where the reader is looking; a 401 or 403 is about the token. */
function explain(error, showOther) {
  if (error instanceof ApiProblem && error.status === 401) {
    askForToken('The API needs a valid bearer token: enter one above.');
  } else if (error instanceof ApiProblem && error.status === 403) {
    askForToken(`This token may not do that: ${error.message}`);
  } else if (error instanceof ApiProblem) {
    showOther(error.problem);
  } else {
    showOther({ title: 'The API could not be reached', detail: error.message });
  }
}

// ---- filters, view and the page's own address ---------------------------------------------

function filtersFromForm() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = $(name).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function addressFromPage() {
  const params = filtersFromForm();
  if (state.view !== 'tasks') params.set('view', state.view);
  return params;
}

function pageFromAddress() {
  const params = new URLSearchParams(location.search);
  for (const name of FILTERS) setField(name, params.get(name) || '');
  state.view = VIEWS.includes(params.get('view')) ? params.get('view') : 'tasks';
}

/** A shared address may hold what a select does not list (status=failed,timed_out): keep it, do not drop it. */
function setField(name, value) {
  const input = $(name);
  if (input.tagName === 'SELECT' && value && ![...input.options].some((option) => option.value === value)) {
    input.append(el('option', { value }, value));
  }
  input.value = value;
}

/**
 * Each select[data-choices] lists the enum of the OpenAPI component it names, so the page offers
 * exactly the values the API accepts, and a command's reason is as long as the API allows. The
 * document is public: this loads before any token. A value already chosen is kept.
 */
async function loadChoices() {
  try {
    const { components } = await apiGet(OPENAPI);
    for (const select of document.querySelectorAll('select[data-choices]')) {
      const chosen = select.value;
      const values = components.schemas[select.dataset.choices].enum;
      select.replaceChildren(select.options[0], ...values.map((value) => el('option', { value }, value)));
      setField(select.id, chosen);
    }
    const reason = components.schemas.OperatorCommand?.properties?.reason?.maxLength;
    if (reason) $('confirm-reason').maxLength = reason;
  } catch (error) {
    $('choices-status').textContent =
      `The status, action and failure class lists could not be loaded (${error.message}); those filters still work from the address.`;
  }
}

function reflectInAddress(params, push) {
  const query = params.toString();
  if (query === location.search.replace(/^\?/, '')) return;
  const url = query ? `${location.pathname}?${query}` : location.pathname;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

function showView() {
  for (const button of document.querySelectorAll('.view-button')) button.setAttribute('aria-pressed', String(button.dataset.view === state.view));
  const waiting = state.view === 'wait';
  $('wait-room').hidden = !waiting;
  $('ledger-view').hidden = waiting;
  $('filters-section').hidden = waiting;
  $('overview').hidden = waiting;
  $('tasks-view').hidden = state.view !== 'tasks';
  $('rows-view').hidden = state.view !== 'rows';
  $('results-heading').textContent = state.view === 'rows' ? 'Ledger rows' : 'Tasks';
}

function chooseView(view) {
  if (view === state.view) return;
  state.view = view;
  search({ push: true });
}

// ---- form errors ---------------------------------------------------------------------------

function clearFormErrors() {
  const box = $('form-errors');
  box.replaceChildren();
  box.hidden = true;
  for (const node of document.querySelectorAll('.field-error')) node.remove();
  for (const name of FILTERS) {
    const input = $(name);
    input.removeAttribute('aria-invalid');
    const describedBy = (input.getAttribute('aria-describedby') || '').split(' ').filter((id) => id && id !== `${name}-error`);
    if (describedBy.length > 0) input.setAttribute('aria-describedby', describedBy.join(' '));
    else input.removeAttribute('aria-describedby');
  }
}

function labelOf(field) {
  const label = document.querySelector(`label[for="${CSS.escape(field)}"]`);
  return label ? label.textContent : field;
}

function markField(field, message) {
  const input = FILTERS.includes(field) ? $(field) : null;
  if (!input) return;
  input.setAttribute('aria-invalid', 'true');
  const id = `${field}-error`;
  input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), id].filter(Boolean).join(' '));
  input.closest('.field').append(el('p', { id, className: 'field-error' }, message));
}

function showFormProblem(problem) {
  clearFormErrors();
  const box = $('form-errors');
  const issues = Array.isArray(problem.errors) ? problem.errors : [];
  box.append(el('p', { className: 'problem-title' }, problem.title || 'The request failed'));
  if (problem.detail && issues.length === 0) box.append(el('p', {}, problem.detail));
  if (issues.length > 0) {
    box.append(el('ul', {}, issues.map((issue) => el('li', {}, el('strong', {}, labelOf(issue.field)), `: ${issue.message}`))));
    for (const issue of issues) markField(issue.field, issue.message);
  }
  box.hidden = false;
}

// ---- results: task lines and ledger rows ---------------------------------------------------

function clearResults() {
  $('rows').tBodies[0].replaceChildren();
  $('tasks').tBodies[0].replaceChildren();
  $('more').hidden = true;
  $('results-status').textContent = '';
  $('summary').replaceChildren();
  $('summary-period').textContent = '';
  state.nextCursor = null;
  state.shown = 0;
}

function trailOpener(taskId) {
  const opener = el('button', { type: 'button', className: 'link', 'data-task-id': taskId }, taskId);
  opener.addEventListener('click', () => openTrail(taskId, opener));
  return opener;
}

function rowElement(row) {
  return el(
    'tr',
    { 'data-task-id': row.taskId, 'data-status': row.status, className: row.taskId === openTaskId() ? 'selected' : null },
    el('td', { className: 'nowrap' }, localTime(row.createdAt)),
    el('td', {}, trailOpener(row.taskId)),
    el('td', {}, badge(row.status)),
    el('td', {}, row.action),
    el('td', {}, list(row.services)),
    el('td', {}, breakable(list(row.intents))),
    el('td', {}, row.agent || '—'),
    el('td', {}, row.actor || '—'),
    el('td', {}, breakable(row.failureClass || '—')),
  );
}

/**
 * How long the task took from its first row to its latest, or, while in flight, so far; and the
 * playbook's own time against its estimate where the latest row has them.
 */
function durationCell(line, inFlight) {
  const seconds = inFlight ? (Date.now() - Date.parse(line.firstAt)) / 1000 : line.elapsedS;
  const parts = [`${duration(seconds) || '—'}${inFlight ? ' so far' : ''}`];
  if (line.wallTimeS !== null) {
    const estimate = line.estimatedDurationS === null ? '' : `, est. ${duration(line.estimatedDurationS)}`;
    parts.push(' ', el('span', { className: 'hint' }, `(ran ${duration(line.wallTimeS)}${estimate})`));
  }
  return parts;
}

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

function taskLineElement(line) {
  const inFlight = !FINAL.includes(line.status);
  return el(
    'tr',
    { 'data-task-id': line.taskId, 'data-status': line.status, className: line.taskId === openTaskId() ? 'selected' : null },
    el('td', { className: 'nowrap' }, localTime(line.lastAt)),
    el('td', {}, trailOpener(line.taskId), inFlight ? [' ', waitRoom.workflowLink(line.taskId)] : null),
    el('td', {}, badge(line.status)),
    el('td', {}, list(line.services)),
    el('td', {}, breakable(list(line.intents))),
    el('td', {}, line.agent || '—'),
    el('td', {}, line.actor || '—'),
    el('td', {}, durationCell(line, inFlight)),
    el('td', {}, breakable(line.failureClass || '—')),
  );
}

const LISTS = {
  tasks: { path: `${API}/tasks`, items: (page) => page.tasks, element: taskLineElement, table: 'tasks', noun: 'task' },
  rows: { path: API, items: (page) => page.rows, element: rowElement, table: 'rows', noun: 'row' },
};

async function loadPage(generation) {
  const list = LISTS[state.view];
  const params = new URLSearchParams(state.query);
  if (state.nextCursor) params.set('cursor', state.nextCursor);
  $('results-status').textContent = 'Loading…';
  $('more').disabled = true;
  try {
    const page = await apiGet(list.path, params);
    if (generation !== state.generation) return;
    const items = list.items(page);
    $(list.table).tBodies[0].append(...items.map(list.element));
    state.shown += items.length;
    state.nextCursor = page.nextCursor;
    $('more').hidden = !page.nextCursor;
    $('results-status').textContent =
      state.shown === 0 ? `No ${list.noun}s match these filters.` : `${plural(state.shown, list.noun)} shown${page.nextCursor ? '; more are available' : ''}.`;
  } catch (error) {
    if (generation !== state.generation) return;
    $('results-status').textContent = '';
    explain(error, showFormProblem);
  } finally {
    $('more').disabled = false;
  }
}

// ---- the period: failures by class and activity per service --------------------------------

function summaryItem(label, count, failureClass) {
  const content = [el('span', { className: 'summary-count' }, String(count)), ' ', el('span', {}, label)];
  if (!failureClass) return el('li', { className: 'summary-total' }, content);
  const button = el('button', { type: 'button', className: `summary-class class-${failureClass}`, title: `Show ${label} failures` }, content);
  button.addEventListener('click', () => {
    setField('failureClass', failureClass);
    setField('status', '');
    search({ push: true });
  });
  return el('li', {}, button);
}

const rangeOf = (query) => {
  const params = new URLSearchParams();
  for (const name of ['from', 'to']) if (query.get(name)) params.set(name, query.get(name));
  return params;
};

async function loadSummary(generation) {
  const params = rangeOf(state.query);
  if (state.query.get('service')) params.set('service', state.query.get('service'));
  try {
    const summary = await apiGet(`${API}/failures/summary`, params);
    if (generation !== state.generation) return;
    const service = params.get('service');
    $('summary-period').replaceChildren(service ? `Service ${service}, from ` : 'All services, from ', localTime(summary.from), ' to ', localTime(summary.to), '.');
    $('summary').replaceChildren(
      summaryItem(summary.total === 1 ? 'failure' : 'failures', summary.total),
      ...Object.entries(summary.byClass).map(([name, count]) => summaryItem(name.replace(/_/g, ' '), count, name)),
    );
    drawFailures($('failure-chart'), summary);
  } catch (error) {
    if (generation !== state.generation) return;
    // The list's request reports the same problem next to the form; this only says the strip is empty.
    $('summary').replaceChildren();
    $('summary-period').textContent = error instanceof ApiProblem ? `Not available: ${error.problem.title || error.message}` : '';
  }
}

async function loadActivity(generation) {
  $('activity-status').textContent = 'Loading…';
  try {
    const drawn = await drawActivity($('activity-chart'), rangeOf(state.query), state.query.get('service'), () => generation === state.generation);
    if (generation !== state.generation) return;
    $('activity-status').textContent = drawn.services === 0 ? 'No rows in this period.' : `${plural(drawn.services, 'service')} over ${plural(drawn.buckets, 'interval')} of ${drawn.bucketLabel}.`;
  } catch (error) {
    if (generation !== state.generation) return;
    $('activity-status').textContent = error instanceof ApiProblem ? `Not available: ${error.problem.title || error.message}` : `Not available: ${error.message}`;
  }
}

function search({ push }) {
  state.generation += 1;
  const generation = state.generation;
  reflectInAddress(addressFromPage(), push);
  showView();
  clearFormErrors();
  clearResults();
  state.query = filtersFromForm();
  if (!storedToken()) {
    waitRoom.stop();
    askForToken('Enter a bearer token to load the ledger.');
    return;
  }
  if (state.view === 'wait') {
    waitRoom.start();
    return;
  }
  waitRoom.stop();
  loadPage(generation);
  loadSummary(generation);
  loadActivity(generation);
}

// ---- export --------------------------------------------------------------------------------

async function download(format) {
  const params = new URLSearchParams(state.query);
  params.delete('limit');
  params.set('format', format);
  $('export-status').textContent = `Preparing the ${format.toUpperCase()} export…`;
  try {
    await apiDownload(`${API}/export`, params, `opsledger-audit.${format}`);
    $('export-status').textContent = `The ${format.toUpperCase()} export of this filter is downloaded.`;
  } catch (error) {
    $('export-status').textContent = '';
    explain(error, showFormProblem);
  }
}

// ---- trail ---------------------------------------------------------------------------------

function openTaskId() {
  return $('trail').hidden ? null : $('trail').dataset.taskId;
}

function markSelected(taskId) {
  for (const table of ['rows', 'tasks']) {
    for (const tr of $(table).tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.taskId === taskId);
  }
}

async function openTrail(taskId, opener) {
  if (state.view === 'wait') {
    state.view = 'rows';
    setField('taskId', taskId);
    search({ push: true });
  }
  const trail = $('trail');
  state.trailOpener = opener;
  trail.dataset.taskId = taskId;
  trail.hidden = false;
  markSelected(taskId);
  $('trail-heading').textContent = `Trail of ${taskId}`;
  $('trail-status').textContent = 'Loading…';
  $('trail-temporal').replaceChildren(waitRoom.workflowLink(taskId) || '');
  $('trail-rows').replaceChildren();
  $('trail-heading').focus();
  try {
    const body = await apiGet(`${API}/tasks/${encodeURIComponent(taskId)}`);
    if (trail.dataset.taskId !== taskId) return;
    $('trail-rows').replaceChildren(...body.rows.map(trailRowElement));
    $('trail-status').textContent = `${plural(body.rows.length, 'row')}, oldest first.`;
  } catch (error) {
    if (trail.dataset.taskId !== taskId) return;
    $('trail-status').textContent = '';
    explain(error, (problem) => {
      $('trail-status').textContent = `${problem.title || 'Failed'}: ${problem.detail || ''}`;
    });
  }
}

function closeTrail() {
  const trail = $('trail');
  if (trail.hidden) return;
  trail.hidden = true;
  delete trail.dataset.taskId;
  markSelected(null);
  if (state.trailOpener && state.trailOpener.isConnected) state.trailOpener.focus();
  state.trailOpener = null;
}

// ---- hash chain ----------------------------------------------------------------------------

function showVerification(v, at) {
  const result = $('verify-result');
  const took = `${Number(v.ms).toFixed(1)} ms`;
  const when = [' (', localTime(at), ')'];
  if (v.ok) {
    result.className = 'verify-result ok';
    result.replaceChildren(
      `Chain intact: ${plural(v.rows, 'row')} checked in ${took}.`,
      ...(v.head
        ? [' Head: row ', String(v.head.chainSeq), ', hash ', el('code', { title: v.head.rowHash }, `${v.head.rowHash.slice(0, 16)}…`), '.']
        : [' The ledger is empty.']),
      ...when,
    );
  } else {
    const b = v.firstBroken || {};
    result.className = 'verify-result broken';
    result.replaceChildren(`Chain BROKEN at chain row ${b.chainSeq} (task ${b.taskId}, seq ${b.seq}): ${b.reason}. ${v.rows} rows checked in ${took}.`, ...when);
  }
}

/** The last verification this tab saw; a viewer reads it, an admin can run another. */
function showLastVerification() {
  const kept = sessionStorage.getItem(LAST_VERIFY_KEY);
  if (kept) {
    const { verification, at } = JSON.parse(kept);
    showVerification(verification, at);
  } else {
    $('verify-result').className = 'verify-result';
    $('verify-result').textContent = 'Not verified in this tab yet.';
  }
}

async function verifyChain() {
  const result = $('verify-result');
  const button = $('verify');
  button.disabled = true;
  result.className = 'verify-result';
  result.textContent = 'Verifying…';
  try {
    const verification = await apiGet(`${API}/verify`);
    const at = new Date().toISOString();
    sessionStorage.setItem(LAST_VERIFY_KEY, JSON.stringify({ verification, at }));
    showVerification(verification, at);
  } catch (error) {
    result.textContent = '';
    explain(error, (problem) => {
      result.className = 'verify-result broken';
      result.textContent = `Verification could not run: ${problem.title || ''}${problem.detail ? ` (${problem.detail})` : ''}`;
    });
  } finally {
    button.disabled = false;
  }
}

// ---- wiring --------------------------------------------------------------------------------

async function start() {
  pageFromAddress();
  $('token-form').addEventListener('submit', signIn);
  $('token-forget').addEventListener('click', signOut);
  $('filters').addEventListener('submit', (event) => {
    event.preventDefault();
    search({ push: true });
  });
  for (const preset of document.querySelectorAll('.preset')) {
    preset.addEventListener('click', () => {
      setField('from', preset.dataset.from);
      setField('to', '');
      search({ push: true });
    });
  }
  for (const button of document.querySelectorAll('.view-button')) button.addEventListener('click', () => chooseView(button.dataset.view));
  $('reset').addEventListener('click', () => {
    for (const name of FILTERS) setField(name, '');
    search({ push: true });
  });
  $('more').addEventListener('click', () => loadPage(state.generation));
  $('export-csv').addEventListener('click', () => download('csv'));
  $('export-ndjson').addEventListener('click', () => download('ndjson'));
  $('verify').addEventListener('click', verifyChain);
  $('trail-close').addEventListener('click', closeTrail);
  $('trail').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeTrail();
  });
  window.addEventListener('popstate', () => {
    pageFromAddress();
    search({ push: false });
  });
  showLastVerification();
  showView();
  loadChoices();
  if (storedToken()) await learnRole();
  search({ push: false });
}

start();
