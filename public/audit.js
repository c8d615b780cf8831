'use strict';

/*
 * The audit explorer. Plain DOM code with no dependencies: everything that comes from the API
 * reaches the page through textContent or attributes, never as markup.
 */
(() => {
  const API = '/api/v1/audit';
  const OPENAPI = '/api/v1/openapi.json';
  const TOKEN_KEY = 'opsledger.auditToken';
  const FILTERS = ['status', 'service', 'intent', 'action', 'failureClass', 'agent', 'taskId', 'changed', 'from', 'to', 'limit'];
  const RESOURCE_LABELS = {
    cpuTimeS: ['CPU time', ' s'],
    wallTimeS: ['Wall time', ' s'],
    peakMemoryMb: ['Peak memory', ' MB'],
    gpuVramMb: ['GPU VRAM', ' MB'],
    agentLoadPctAtDispatch: ['Agent load at dispatch', ' %'],
    estimatedDurationS: ['Estimated duration', ' s'],
    estimateSource: ['Estimate source', ''],
    complexity: ['Complexity', ''],
  };
  /** Outcome fields shown in sections of their own rather than in the key/value list. */
  const OUTCOME_SECTIONS = ['keyMessages', 'outputTail', 'steps', 'counts'];

  const $ = (id) => document.getElementById(id);
  const state = { generation: 0, nextCursor: null, query: null, shown: 0, trailOpener: null };

  class ApiProblem extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  /** Builds an element; strings among the children become text nodes, so data is never parsed as HTML. */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'className') node.className = value;
      else if (name === 'onclick') node.addEventListener('click', value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // ---- token -------------------------------------------------------------------------------

  function storedToken() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  function askForToken(message) {
    $('token-message').textContent = message;
    $('token-message').className = 'token-message warning';
    $('token').focus();
  }

  function saveToken(event) {
    event.preventDefault();
    const token = $('token').value.trim();
    if (!token) {
      askForToken('Enter a bearer token first.');
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    $('token-message').textContent = 'Token kept for this tab.';
    $('token-message').className = 'token-message';
    search({ push: false });
  }

  function forgetToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    $('token').value = '';
    state.generation += 1;
    clearResults();
    closeTrail();
    askForToken('Token forgotten. Enter a token to load the ledger.');
  }

  // ---- API ---------------------------------------------------------------------------------

  async function apiGet(path, params) {
    const query = params && [...params].length > 0 ? `?${params}` : '';
    const headers = { accept: 'application/json' };
    const token = storedToken();
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(`${path}${query}`, { headers, cache: 'no-store' });
    const type = response.headers.get('content-type') || '';
    const body = type.includes('json') ? await response.json() : { title: await response.text() };
    if (!response.ok) throw new ApiProblem(response.status, body);
    return body;
  }

  /** Says what went wrong where the reader is looking; a 401 or 403 is about the token. */
  function explain(error, showOther) {
    if (error instanceof ApiProblem && error.status === 401) {
      askForToken('The API needs a valid bearer token: enter one above.');
    } else if (error instanceof ApiProblem && error.status === 403) {
      askForToken(`This token may not read the audit: ${error.message}`);
    } else if (error instanceof ApiProblem) {
      showOther(error.problem);
    } else {
      showOther({ title: 'The API could not be reached', detail: error.message });
    }
  }

  // ---- filters and the page's own address -------------------------------------------------

  function filtersFromForm() {
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const value = $(name).value.trim();
      if (value) params.set(name, value);
    }
    return params;
  }

  function formFromAddress() {
    const params = new URLSearchParams(location.search);
    for (const name of FILTERS) setField(name, params.get(name) || '');
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
   * exactly the values the API accepts. The document is public: the lists load before any token.
   * A value already chosen (from the address, or by the reader meanwhile) is kept.
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

  // ---- form errors -------------------------------------------------------------------------

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

  // ---- results -----------------------------------------------------------------------------

  function clearResults() {
    $('rows').tBodies[0].replaceChildren();
    $('more').hidden = true;
    $('results-status').textContent = '';
    $('summary').replaceChildren();
    $('summary-period').textContent = '';
    state.nextCursor = null;
    state.shown = 0;
  }

  function localTime(iso) {
    const date = new Date(iso);
    const text = Number.isNaN(date.getTime())
      ? iso
      : date.toLocaleString(undefined, {
          year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
        });
    return el('time', { datetime: iso, title: iso }, text);
  }

  function badge(status) {
    return el('span', { className: `badge status-${status}` }, status);
  }

  function list(values) {
    return Array.isArray(values) && values.length > 0 ? values.join(', ') : '—';
  }

  /** Lets a narrow column wrap snake_case words (application_error) after their underscores, not mid-word. */
  function breakable(text) {
    return String(text).split(/(?<=_)/).flatMap((part, i) => (i === 0 ? [part] : [el('wbr'), part]));
  }

  function rowElement(row) {
    const opener = el('button', { type: 'button', className: 'link', 'data-task-id': row.taskId }, row.taskId);
    opener.addEventListener('click', () => openTrail(row.taskId, opener));
    return el(
      'tr',
      { 'data-task-id': row.taskId, 'data-status': row.status, className: row.taskId === openTaskId() ? 'selected' : null },
      el('td', { className: 'nowrap' }, localTime(row.createdAt)),
      el('td', {}, opener),
      el('td', {}, badge(row.status)),
      el('td', {}, row.action),
      el('td', {}, list(row.services)),
      el('td', {}, breakable(list(row.intents))),
      el('td', {}, row.agent || '—'),
      el('td', {}, row.actor || '—'),
      el('td', {}, breakable(row.failureClass || '—')),
    );
  }

  async function loadPage(generation) {
    const params = new URLSearchParams(state.query);
    if (state.nextCursor) params.set('cursor', state.nextCursor);
    $('results-status').textContent = 'Loading…';
    $('more').disabled = true;
    try {
      const page = await apiGet(API, params);
      if (generation !== state.generation) return;
      $('rows').tBodies[0].append(...page.rows.map(rowElement));
      state.shown += page.rows.length;
      state.nextCursor = page.nextCursor;
      $('more').hidden = !page.nextCursor;
      $('results-status').textContent =
        state.shown === 0 ? 'No rows match these filters.' : `${state.shown} row${state.shown === 1 ? '' : 's'} shown${page.nextCursor ? '; more are available' : ''}.`;
    } catch (error) {
      if (generation !== state.generation) return;
      $('results-status').textContent = '';
      explain(error, showFormProblem);
    } finally {
      $('more').disabled = false;
    }
  }

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

  async function loadSummary(generation) {
    const params = new URLSearchParams();
    for (const name of ['from', 'to', 'service']) if (state.query.get(name)) params.set(name, state.query.get(name));
    try {
      const summary = await apiGet(`${API}/failures/summary`, params);
      if (generation !== state.generation) return;
      const service = params.get('service');
      $('summary-period').replaceChildren(service ? `Service ${service}, from ` : 'All services, from ', localTime(summary.from), ' to ', localTime(summary.to), '.');
      $('summary').replaceChildren(
        summaryItem(summary.total === 1 ? 'failure' : 'failures', summary.total),
        ...Object.entries(summary.byClass).map(([name, count]) => summaryItem(name.replace(/_/g, ' '), count, name)),
      );
    } catch (error) {
      if (generation !== state.generation) return;
      // The table's request reports the same problem next to the form; this only says the strip is empty.
      $('summary').replaceChildren();
      $('summary-period').textContent = error instanceof ApiProblem ? `Not available: ${error.problem.title || error.message}` : '';
    }
  }

  function search({ push }) {
    state.generation += 1;
    const generation = state.generation;
    const params = filtersFromForm();
    reflectInAddress(params, push);
    clearFormErrors();
    clearResults();
    state.query = params;
    if (!storedToken()) {
      askForToken('Enter a bearer token to load the ledger.');
      return;
    }
    loadPage(generation);
    loadSummary(generation);
  }

  // ---- trail -------------------------------------------------------------------------------

  function openTaskId() {
    return $('trail').hidden ? null : $('trail').dataset.taskId;
  }

  function markSelected(taskId) {
    for (const tr of $('rows').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.taskId === taskId);
  }

  function formatValue(value) {
    if (value === null || value === undefined || value === '') return '—';
    if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.join(', ') || '—';
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }

  function definitions(entries) {
    const shown = entries.filter(([, value]) => value !== undefined);
    if (shown.length === 0) return null;
    return el('dl', { className: 'facts' }, shown.map(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]));
  }

  function resourcesOf(resources) {
    if (!resources || typeof resources !== 'object') return null;
    return Object.entries(resources).map(([key, value]) => {
      const [label, unit] = RESOURCE_LABELS[key] || [key, ''];
      return [label, value === null ? '—' : `${formatValue(value)}${unit}`];
    });
  }

  function section(title, ...content) {
    const body = content.filter(Boolean);
    return body.length > 0 ? el('section', { className: 'trail-section' }, el('h4', {}, title), body) : null;
  }

  function trailRowElement(row) {
    const outcome = row.outcome && typeof row.outcome === 'object' && !Array.isArray(row.outcome) ? row.outcome : {};
    const failure = row.failure && typeof row.failure === 'object' ? row.failure : null;
    const keyMessages = Array.isArray(outcome.keyMessages) ? outcome.keyMessages : [];
    const outputTail = Array.isArray(outcome.outputTail) ? outcome.outputTail : [];
    const steps = Array.isArray(outcome.steps) ? outcome.steps : [];
    const otherOutcome = Object.entries(outcome).filter(([key]) => !OUTCOME_SECTIONS.includes(key));
    const counts = outcome.counts && typeof outcome.counts === 'object' ? Object.entries(outcome.counts) : [];

    return el(
      'li',
      { className: `trail-row row-${row.status}`, 'data-seq': row.seq },
      el('h3', {}, `#${row.seq} `, badge(row.status), ' ', localTime(row.createdAt)),
      definitions([
        ['Action', row.action],
        ['Services', list(row.services)],
        ['Agent', row.agent || '—'],
        ['Actor', row.actor || '—'],
        ['Chain row', row.chainSeq],
        ['Row hash', row.rowHash ? el('code', { title: row.rowHash }, `${row.rowHash.slice(0, 16)}…`) : undefined],
      ]),
      failure &&
        el(
          'div',
          { className: 'failure' },
          el('p', {}, el('strong', {}, row.failureClass ? `Failure (${row.failureClass.replace(/_/g, ' ')})` : 'Failure'), ': ', el('span', { className: 'failure-message' }, failure.message || '—')),
          failure.context ? el('p', { className: 'hint' }, `Context: ${formatValue(failure.context)}`) : null,
        ),
      section('Key messages', keyMessages.length > 0 && el('ul', { className: 'key-messages' }, keyMessages.map((m) => el('li', {}, m)))),
      section('Outcome', definitions([...otherOutcome.map(([k, v]) => [k, formatValue(v)]), ...counts.map(([k, v]) => [k, formatValue(v)])])),
      section('Resources used', definitions(resourcesOf(row.resourcesUsed) || [])),
      section('Steps', steps.length > 0 && el('ol', { className: 'steps' }, steps.map((s) => el('li', {}, `${s.task} `, el('span', { className: `step step-${s.status}` }, s.status), s.host ? ` on ${s.host}` : '')))),
      outputTail.length > 0 &&
        el('details', { className: 'output', open: row.status === 'failed' || row.status === 'timed_out' }, el('summary', {}, `Output, last ${outputTail.length} line${outputTail.length === 1 ? '' : 's'}`), el('pre', { className: 'output-tail' }, outputTail.join('\n'))),
    );
  }

  async function openTrail(taskId, opener) {
    const trail = $('trail');
    state.trailOpener = opener;
    trail.dataset.taskId = taskId;
    trail.hidden = false;
    markSelected(taskId);
    $('trail-heading').textContent = `Trail of ${taskId}`;
    $('trail-status').textContent = 'Loading…';
    $('trail-rows').replaceChildren();
    $('trail-heading').focus();
    try {
      const body = await apiGet(`${API}/tasks/${encodeURIComponent(taskId)}`);
      if (trail.dataset.taskId !== taskId) return;
      $('trail-rows').replaceChildren(...body.rows.map(trailRowElement));
      $('trail-status').textContent = `${body.rows.length} row${body.rows.length === 1 ? '' : 's'}, oldest first.`;
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

  // ---- hash chain --------------------------------------------------------------------------

  async function verifyChain() {
    const result = $('verify-result');
    const button = $('verify');
    button.disabled = true;
    result.className = 'verify-result';
    result.textContent = 'Verifying…';
    try {
      const v = await apiGet(`${API}/verify`);
      const took = `${Number(v.ms).toFixed(1)} ms`;
      if (v.ok) {
        result.className = 'verify-result ok';
        result.replaceChildren(
          `Chain intact: ${v.rows} row${v.rows === 1 ? '' : 's'} checked in ${took}.`,
          ...(v.head
            ? [' Head: row ', String(v.head.chainSeq), ', hash ', el('code', { title: v.head.rowHash }, `${v.head.rowHash.slice(0, 16)}…`), '.']
            : [' The ledger is empty.']),
        );
      } else {
        const b = v.firstBroken || {};
        result.className = 'verify-result broken';
        result.textContent = `Chain BROKEN at chain row ${b.chainSeq} (task ${b.taskId}, seq ${b.seq}): ${b.reason}. ${v.rows} rows checked in ${took}.`;
      }
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

  // ---- wiring ------------------------------------------------------------------------------

  function start() {
    formFromAddress();
    $('token-form').addEventListener('submit', saveToken);
    $('token-forget').addEventListener('click', forgetToken);
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      search({ push: true });
    });
    $('reset').addEventListener('click', () => {
      for (const name of FILTERS) setField(name, '');
      search({ push: true });
    });
    $('more').addEventListener('click', () => loadPage(state.generation));
    $('verify').addEventListener('click', verifyChain);
    $('trail-close').addEventListener('click', closeTrail);
    $('trail').addEventListener('keydown', (event) => {
      if (event.key === 'Escape') closeTrail();
    });
    window.addEventListener('popstate', () => {
      formFromAddress();
      search({ push: false });
    });
    search({ push: false });
    loadChoices();
  }

  start();
})();
