/*
 * A task's trail: each decision the ledger recorded, oldest first, told as a sentence (queued,
 * paused and why, resumed by whom, dispatched where at what load, the outcome), then its key
 * messages, the last lines of output, the resources used with the estimate beside the wall time,
 * the row hash and the actor of record.
 */
import { badge, definitions, duration, el, formatValue, list, localTime, plural } from './dom.js';

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

const objectOr = (value, fallback) => (value && typeof value === 'object' && !Array.isArray(value) ? value : fallback);
const words = (snake) => String(snake).replace(/_/g, ' ');

/** What the row decided, in a sentence built from its own fields. */
export function decisionOf(row) {
  const outcome = objectOr(row.outcome, {});
  switch (row.status) {
    case 'queued':
      return `Queued by ${row.actor}.`;
    case 'paused': {
      const why = outcome.reason ? words(outcome.reason) : 'no reason recorded';
      const shortfall = outcome.shortfall ? ` Short of: ${outcome.shortfall}.` : '';
      const position = typeof outcome.position === 'number' ? ` Position ${outcome.position} in the queue.` : '';
      return `Paused before dispatch (${why}) by ${row.actor}.${shortfall}${position}`;
    }
    case 'resumed':
      if (outcome.override) return `Overridden by ${row.actor}: dispatched now on ${outcome.grantedAgent || 'the agent with most headroom'}.`;
      if (outcome.from === 'operator_hold') return `Hold released by ${row.actor}.`;
      return `Resumed by ${row.actor}${outcome.grantedAgent ? `: capacity granted on ${outcome.grantedAgent}` : ''}.`;
    case 'dispatched': {
      const load = typeof outcome.loadPctAtDispatch === 'number' ? ` at ${outcome.loadPctAtDispatch} % load` : '';
      const attempt = typeof outcome.attempt === 'number' && outcome.attempt > 1 ? ` (attempt ${outcome.attempt})` : '';
      return `Dispatched to ${row.agent || 'an agent'}${load}${outcome.overridden ? ', overriding capacity' : ''}${attempt}.`;
    }
    default:
      return `${words(row.status).replace(/^./, (c) => c.toUpperCase())}${row.agent ? ` on ${row.agent}` : ''}${outcome.result ? ` (result ${outcome.result})` : ''}.`;
  }
}

function resourcesOf(resources) {
  return Object.entries(objectOr(resources, {})).map(([key, value]) => {
    const [label, unit] = RESOURCE_LABELS[key] || [key, ''];
    return [label, value === null ? '—' : `${formatValue(value)}${unit}`];
  });
}

/** Estimated against actual: the two fields of resources_used, side by side, and how far apart. */
function estimateElement(resources) {
  const { estimatedDurationS: estimated, wallTimeS: actual } = objectOr(resources, {});
  if (typeof estimated !== 'number' || typeof actual !== 'number') return null;
  const ratio = estimated > 0 ? actual / estimated : null;
  const verdict = ratio === null ? '' : ratio > 1 ? ` (${Math.round((ratio - 1) * 100)} % over)` : ` (${Math.round((1 - ratio) * 100)} % under)`;
  return el('p', { className: 'estimate' }, `Estimated ${duration(estimated)}, took ${duration(actual)}${verdict}.`);
}

function section(title, ...content) {
  const body = content.filter(Boolean);
  return body.length > 0 ? el('section', { className: 'trail-section' }, el('h4', {}, title), body) : null;
}

export function trailRowElement(row) {
  const outcome = objectOr(row.outcome, {});
  const failure = objectOr(row.failure, null);
  const keyMessages = Array.isArray(outcome.keyMessages) ? outcome.keyMessages : [];
  const outputTail = Array.isArray(outcome.outputTail) ? outcome.outputTail : [];
  const steps = Array.isArray(outcome.steps) ? outcome.steps : [];
  const otherOutcome = Object.entries(outcome).filter(([key]) => !OUTCOME_SECTIONS.includes(key));
  const counts = Object.entries(objectOr(outcome.counts, {}));

  return el(
    'li',
    { className: `trail-row row-${row.status}`, 'data-seq': row.seq, 'data-status': row.status },
    el('h3', {}, `#${row.seq} `, badge(row.status), ' ', localTime(row.createdAt)),
    el('p', { className: 'decision' }, decisionOf(row)),
    definitions([
      ['Action', row.action],
      ['Services', list(row.services)],
      ['Agent', row.agent || '—'],
      ['Actor of record', row.actor || '—'],
      ['Chain row', row.chainSeq],
      ['Row hash', row.rowHash ? el('code', { className: 'row-hash', title: row.rowHash }, `${row.rowHash.slice(0, 16)}…`) : undefined],
    ]),
    failure &&
      el(
        'div',
        { className: 'failure' },
        el('p', {}, el('strong', {}, row.failureClass ? `Failure (${words(row.failureClass)})` : 'Failure'), ': ', el('span', { className: 'failure-message' }, failure.message || '—')),
        failure.context ? el('p', { className: 'hint' }, `Context: ${formatValue(failure.context)}`) : null,
      ),
    section('Key messages', keyMessages.length > 0 && el('ul', { className: 'key-messages' }, keyMessages.map((m) => el('li', {}, m)))),
    section('Outcome', definitions([...otherOutcome.map(([k, v]) => [k, formatValue(v)]), ...counts.map(([k, v]) => [k, formatValue(v)])])),
    section('Resources used', estimateElement(row.resourcesUsed), definitions(resourcesOf(row.resourcesUsed))),
    section('Steps', steps.length > 0 && el('ol', { className: 'steps' }, steps.map((s) => el('li', {}, `${s.task} `, el('span', { className: `step step-${s.status}` }, s.status), s.host ? ` on ${s.host}` : '')))),
    outputTail.length > 0 &&
      el(
        'details',
        { className: 'output', open: row.status === 'failed' || row.status === 'timed_out' },
        el('summary', {}, `Output, last ${plural(outputTail.length, 'line')}`),
        el('pre', { className: 'output-tail' }, outputTail.join('\n')),
      ),
  );
}
