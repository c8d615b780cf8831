/*
 * The wait room: the pause queue in dispatch order with why each task waits, the agents with
 * their headroom and how fresh their report is, and for operators the commands on each task and
 * the dispatch-hold switch, each confirmed first and its result shown. It refreshes itself.
 */
import { apiGet, apiPost } from './api.js';
import { $, el, duration, localTime, plural } from './dom.js';

const REFRESH_MS = 5000;

const COMMANDS = {
  pause: { label: 'Hold', ask: (id) => `Hold task ${id}? It keeps its place but is not resumed by itself.`, done: 'held' },
  resume: { label: 'Resume', ask: (id) => `Release the hold on task ${id}? It waits for capacity again, in its old place.`, done: 'released' },
  override: { label: 'Override', ask: (id) => `Dispatch task ${id} now, ignoring capacity?`, done: 'overridden' },
  cancel: { label: 'Cancel', ask: (id) => `Cancel task ${id}? A running playbook is killed.`, done: 'cancelled' },
};

const words = (snake) => String(snake).replace(/_/g, ' ');
const ago = (iso) => duration(Math.max(0, (Date.now() - Date.parse(iso)) / 1000)) || '—';
const mb = (value) => (value === null || value === undefined ? '—' : value >= 1024 ? `${(value / 1024).toFixed(1)} GiB` : `${value} MB`);

/** Asks before acting, in a modal dialog the keyboard can answer (Escape cancels). */
function confirmAction(text, { withReason }) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  $('confirm-reason').value = '';
  $('confirm-reason').hidden = !withReason;
  $('confirm-reason-label').hidden = !withReason;
  return new Promise((resolve) => {
    const finish = (confirmed) => {
      $('confirm-yes').removeEventListener('click', yes);
      $('confirm-no').removeEventListener('click', no);
      dialog.removeEventListener('cancel', no);
      dialog.close();
      resolve({ confirmed, reason: $('confirm-reason').value.trim() });
    };
    const yes = () => finish(true);
    const no = (event) => {
      event?.preventDefault();
      finish(false);
    };
    $('confirm-yes').addEventListener('click', yes);
    $('confirm-no').addEventListener('click', no);
    dialog.addEventListener('cancel', no);
    dialog.showModal();
    (withReason ? $('confirm-reason') : $('confirm-yes')).focus();
  });
}

export function createWaitRoom({ may, openTrail, explain, temporalUi }) {
  let timer = null;
  let generation = 0;

  function workflowLink(taskId) {
    const ui = temporalUi();
    if (!ui) return null;
    const href = `${ui.url}/namespaces/${encodeURIComponent(ui.namespace)}/workflows/${encodeURIComponent(taskId)}`;
    return el('a', { href, className: 'temporal-link', target: '_blank', rel: 'noopener noreferrer' }, 'Temporal UI');
  }

  function showPausedListLink() {
    const ui = temporalUi();
    const link = $('temporal-paused');
    link.hidden = !ui;
    if (!ui) return;
    const service = new URLSearchParams(location.search).get('service');
    const query = service ? `OpsStatus='paused' AND OpsServices='${service.replace(/'/g, '')}'` : `OpsStatus='paused'`;
    link.href = `${ui.url}/namespaces/${encodeURIComponent(ui.namespace)}/workflows?query=${encodeURIComponent(query)}`;
    link.textContent = service ? `Paused ${service} tasks in the Temporal UI` : 'Paused tasks in the Temporal UI';
  }

  function showResult(text, ok) {
    const result = $('command-result');
    result.className = `command-result ${ok ? 'ok' : 'broken'}`;
    result.textContent = text;
  }

  async function run(text, withReason, call, describe) {
    const { confirmed, reason } = await confirmAction(text, { withReason });
    if (!confirmed) return;
    try {
      const answer = await call(reason);
      showResult(describe(answer), true);
    } catch (error) {
      explain(error, (problem) => showResult(`${problem.title || 'Refused'}${problem.detail ? `: ${problem.detail}` : ''}`, false));
    }
    refresh();
  }

  function commandButtons(entry) {
    const names = [entry.reason === 'operator_hold' ? 'resume' : 'pause', 'override', 'cancel'];
    return names.map((name) => {
      const command = COMMANDS[name];
      const button = el('button', { type: 'button', className: `command command-${name}`, 'data-command': name }, command.label);
      button.addEventListener('click', () =>
        run(
          command.ask(entry.taskId),
          true,
          (reason) => apiPost(`/api/v1/tasks/${encodeURIComponent(entry.taskId)}/${name}`, reason ? { reason } : {}),
          (state) => `Task ${entry.taskId} ${command.done}: it is now ${words(state.status)}${state.waiting ? ` (${words(state.waiting.reason)})` : ''}.`,
        ),
      );
      return button;
    });
  }

  function queueRow(entry) {
    const opener = el('button', { type: 'button', className: 'link' }, entry.taskId);
    opener.addEventListener('click', () => openTrail(entry.taskId, opener));
    return el(
      'tr',
      { 'data-task-id': entry.taskId, 'data-reason': entry.reason },
      el('td', {}, String(entry.position)),
      el('td', {}, opener, ' ', workflowLink(entry.taskId)),
      el('td', {}, entry.pool),
      el('td', {}, String(entry.priority)),
      el('td', {}, words(entry.reason)),
      el('td', {}, entry.shortfall || '—'),
      el('td', { className: 'nowrap', title: entry.enqueuedAt }, ago(entry.enqueuedAt)),
      el('td', {}, entry.heldBy || '—'),
      may('operator') ? el('td', { className: 'commands' }, commandButtons(entry)) : null,
    );
  }

  function agentRow(agent) {
    const r = agent.reserved;
    return el(
      'tr',
      { 'data-agent-id': agent.agentId, className: agent.live ? null : 'stale' },
      el('td', {}, agent.agentId),
      el('td', {}, agent.pool),
      el('td', { className: 'nowrap', title: agent.heartbeatAt }, `${agent.live ? 'live' : 'stale'}, ${ago(agent.heartbeatAt)} ago`),
      el('td', { className: 'nowrap' }, `${agent.cpuCores} cores, ${agent.loadPct} % load`),
      el('td', { className: 'nowrap' }, `${mb(agent.memoryFreeMb)} of ${mb(agent.memoryTotalMb)}`),
      el('td', { className: 'nowrap' }, agent.gpuVramTotalMb === null ? 'no GPU' : `${mb(agent.gpuVramFreeMb)} of ${mb(agent.gpuVramTotalMb)}`),
      el('td', {}, `${plural(r.tasks, 'task')}: ${r.cpu} CPU, ${mb(r.memoryMb)}${r.gpuVramMb ? `, ${mb(r.gpuVramMb)} VRAM` : ''}`),
    );
  }

  function showDispatch(dispatch) {
    $('dispatch-state').replaceChildren(
      dispatch.held ? el('strong', { className: 'held' }, `Dispatch is HELD by ${dispatch.heldBy || 'an operator'}`) : 'Dispatch is running',
      ' since ',
      localTime(dispatch.changedAt),
      '.',
    );
    const toggle = $('dispatch-toggle');
    toggle.textContent = dispatch.held ? 'Release dispatch' : 'Hold all dispatch';
    toggle.dataset.held = String(dispatch.held);
  }

  async function refresh() {
    const mine = ++generation;
    try {
      const [queue, agents] = await Promise.all([apiGet('/api/v1/pause-queue'), apiGet('/api/v1/agents')]);
      if (mine !== generation) return;
      showDispatch(queue.dispatch);
      showPausedListLink();
      $('queue').tBodies[0].replaceChildren(...queue.tasks.map(queueRow));
      $('agents').tBodies[0].replaceChildren(...agents.agents.map(agentRow));
      $('wait-status').replaceChildren(`${plural(queue.tasks.length, 'task')} waiting, ${plural(agents.agents.length, 'agent')}; refreshed `, localTime(new Date().toISOString()), '.');
    } catch (error) {
      if (mine !== generation) return;
      explain(error, (problem) => {
        $('wait-status').textContent = `Not available: ${problem.title || ''}${problem.detail ? ` (${problem.detail})` : ''}`;
      });
    }
  }

  $('dispatch-toggle').addEventListener('click', () => {
    const held = $('dispatch-toggle').dataset.held === 'true';
    run(
      held ? 'Release the dispatch hold? Waiting tasks that fit resume in order.' : 'Hold all dispatch (maintenance)? New and waiting tasks wait until released.',
      false,
      () => apiPost(`/api/v1/dispatch/${held ? 'release' : 'hold'}`),
      (dispatch) => (dispatch.held ? `Dispatch held by ${dispatch.heldBy}.` : 'Dispatch released.'),
    );
  });

  return {
    workflowLink,
    start() {
      if (timer !== null) return;
      refresh();
      timer = setInterval(() => {
        if (!document.hidden) refresh();
      }, REFRESH_MS);
    },
    stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      generation += 1;
    },
  };
}
