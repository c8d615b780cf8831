/**
 * Instants as epoch microseconds (bigint), PostgreSQL's own precision: a JS Date would drop the
 * last three digits, and a cursor or a range bound must name an instant exactly. Parsing of the
 * forms a query string may use (ISO 8601 with an offset, or a relative 30m/2h/7d/1w) is here too.
 */

export const MICROS_PER_MS = 1000n;
export const MICROS_PER_HOUR = 3_600_000_000n;
const MICROS_PER_MINUTE = 60_000_000n;
export const MICROS_PER_DAY = 24n * MICROS_PER_HOUR;
// A relative time further back than this is a typo, not a query (and would leave PostgreSQL's range).
const LONGEST_RELATIVE = 100n * 366n * MICROS_PER_DAY;

/** A time as given: an instant, or a span back from the moment the request is answered. */
export type TimeRef = { instant: bigint } | { ago: bigint };

const RELATIVE = /^(\d{1,7})([mhdw])$/;
const RELATIVE_UNITS: Record<string, bigint> = {
  m: MICROS_PER_MINUTE,
  h: MICROS_PER_HOUR,
  d: MICROS_PER_DAY,
  w: 7n * MICROS_PER_DAY,
};
// A date, or a date and time with an explicit offset: a time without one would mean the server's zone.
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|([+-])(\d{2}):?(\d{2})))?$/;

export const TIME_HELP =
  'expected ISO 8601 (2026-11-20, 2026-11-20T08:00:00Z, 2026-11-20T09:00:00.123456+01:00) or a time back from now (30m, 24h, 7d, 2w)';

/** `7d`, `24h`, `30m`, `2w` or an ISO 8601 date / date-time with offset; undefined when neither. */
export function parseTimeRef(text: string): TimeRef | undefined {
  const relative = RELATIVE.exec(text);
  if (relative) {
    const ago = BigInt(relative[1]!) * RELATIVE_UNITS[relative[2]!]!;
    return ago <= LONGEST_RELATIVE ? { ago } : undefined;
  }
  const instant = parseIsoMicros(text);
  return instant === undefined ? undefined : { instant };
}

function parseIsoMicros(text: string): bigint | undefined {
  const m = ISO_8601.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((v) => Number(v ?? 0)) as [
    number, number, number, number, number, number,
  ];
  if (year < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  // setUTCFullYear rolls 2026-02-30 over into March: a date that does not exist comes back changed.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  const offsetHours = Number(m[10] ?? 0);
  const offsetMinutes = Number(m[11] ?? 0);
  if (offsetHours > 23 || offsetMinutes > 59) return undefined;
  const offset = BigInt((offsetHours * 60 + offsetMinutes) * 60) * 1_000_000n * (m[9] === '-' ? -1n : 1n);
  const fraction = BigInt((m[7] ?? '').padEnd(6, '0'));
  return BigInt(date.getTime()) * MICROS_PER_MS + fraction - offset;
}

export function resolveTimeRef(ref: TimeRef, nowMicros: bigint): bigint {
  return 'instant' in ref ? ref.instant : nowMicros - ref.ago;
}

/** ISO 8601 in UTC; six fraction digits when the instant is not a whole millisecond. */
export function microsToIso(micros: bigint): string {
  const ms = floorDiv(micros, MICROS_PER_MS);
  const iso = new Date(Number(ms)).toISOString();
  const sub = micros - ms * MICROS_PER_MS;
  return sub === 0n ? iso : `${iso.slice(0, -1)}${sub.toString().padStart(3, '0')}Z`;
}

export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q;
}

export function nowMicros(nowMs: number = Date.now()): bigint {
  return BigInt(nowMs) * MICROS_PER_MS;
}
