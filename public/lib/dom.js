/*
 * Building the page from data: everything that comes from the API reaches the page through text
 * nodes or attributes, never as markup.
 */

export const $ = (id) => document.getElementById(id);

/** Builds an element; strings among the children become text nodes, so data is never parsed as HTML. */
export function el(tag, attributes, ...children) {
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

export function localTime(iso) {
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, {
        year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
      });
  return el('time', { datetime: iso, title: iso }, text);
}

export function badge(status) {
  return el('span', { className: `badge status-${status}` }, status);
}

export function list(values) {
  return Array.isArray(values) && values.length > 0 ? values.join(', ') : '—';
}

/** Lets a narrow column wrap snake_case words (application_error) after their underscores, not mid-word. */
export function breakable(text) {
  return String(text).split(/(?<=_)/).flatMap((part, i) => (i === 0 ? [part] : [el('wbr'), part]));
}

export function formatValue(value) {
  if (value === null || value === undefined || value === '') return '—';
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.join(', ') || '—';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** 95 s -> "1 min 35 s"; null when there is nothing to say. */
export function duration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return null;
  if (seconds < 60) return `${Number(seconds.toFixed(seconds < 10 ? 1 : 0))} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function definitions(entries) {
  const shown = entries.filter(([, value]) => value !== undefined);
  if (shown.length === 0) return null;
  return el('dl', { className: 'facts' }, shown.map(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]));
}

export const plural = (count, word) => `${count} ${word}${count === 1 ? '' : 's'}`;
