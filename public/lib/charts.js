/*
 * Pictures of the period, drawn by Chart.js (served by the API from node_modules at
 * /audit/vendor/chart.umd.js; it loads before this module). The counts beside each chart come
 * from the same answers, so a reader who cannot see the picture reads the same figures.
 */
import { apiGet } from './api.js';

const PALETTE = ['#0b5cad', '#a40e26', '#7d4e00', '#116329', '#6639ba', '#953800', '#0a7c86', '#57606a', '#bf3989', '#1b1f24'];
const MINUTE = 60_000;
const BUCKETS = [5, 15, 60, 180, 360, 1440, 10080].map((minutes) => minutes * MINUTE);
const MOST_BUCKETS = 24;
const DEFAULT_SPAN = 7 * 1440 * MINUTE;
const UNITS = { m: MINUTE, h: 60 * MINUTE, d: 1440 * MINUTE, w: 10080 * MINUTE };

/** A time as the filters take it (ISO 8601, or an age like 7d), as epoch milliseconds. */
function instant(text, now) {
  const relative = /^(\d{1,7})([mhdw])$/.exec(text);
  if (relative) return now - Number(relative[1]) * UNITS[relative[2]];
  const parsed = Date.parse(text);
  if (Number.isNaN(parsed)) throw new Error(`not a time: ${text}`);
  return parsed;
}

function replaceChart(canvas, config) {
  window.Chart.getChart(canvas)?.destroy();
  return new window.Chart(canvas, { ...config, options: { animation: false, maintainAspectRatio: false, ...config.options } });
}

const bucketLabel = (ms) => (ms >= 1440 * MINUTE ? `${ms / (1440 * MINUTE)} d` : ms >= 60 * MINUTE ? `${ms / (60 * MINUTE)} h` : `${ms / MINUTE} min`);

/** Failures by class over the period, from GET /audit/failures/summary. */
export function drawFailures(canvas, summary) {
  const classes = Object.keys(summary.byClass);
  replaceChart(canvas, {
    type: 'bar',
    data: {
      labels: classes.map((name) => name.replace(/_/g, ' ')),
      datasets: [{ label: 'Failures', data: classes.map((name) => summary.byClass[name]), backgroundColor: classes.map((_, i) => PALETTE[(i + 1) % PALETTE.length]) }],
    },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
}

/**
 * Ledger rows per service over the period: the range cut into at most 24 intervals, one
 * GET /audit/by-service each (a few milliseconds apiece on the running totals).
 */
export async function drawActivity(canvas, range, service, stillCurrent) {
  const now = Date.now();
  const to = range.get('to') ? instant(range.get('to'), now) : now;
  const from = range.get('from') ? instant(range.get('from'), now) : to - DEFAULT_SPAN;
  const size = BUCKETS.find((ms) => (to - from) / ms <= MOST_BUCKETS) || BUCKETS[BUCKETS.length - 1];
  const edges = [];
  for (let start = from; start < to; start += size) edges.push([start, Math.min(start + size, to)]);
  const answers = await Promise.all(
    edges.map(([start, end]) => apiGet('/api/v1/audit/by-service', new URLSearchParams({ from: new Date(start).toISOString(), to: new Date(end).toISOString() }))),
  );
  if (!stillCurrent()) return { services: 0, buckets: 0, bucketLabel: '' };
  const names = [...new Set(answers.flatMap((a) => a.services.map((s) => s.service)))].filter((name) => !service || name === service).sort();
  replaceChart(canvas, {
    type: 'bar',
    data: {
      labels: edges.map(([start]) => new Date(start).toLocaleString(undefined, { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false })),
      datasets: names.map((name, i) => ({
        label: name,
        data: answers.map((a) => a.services.find((s) => s.service === name)?.total ?? 0),
        backgroundColor: PALETTE[i % PALETTE.length],
      })),
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });
  return { services: names.length, buckets: edges.length, bucketLabel: bucketLabel(size) };
}
