import fc from 'fast-check';
import { ValidationError } from '../../src/errors';
import {
  AuditQuery,
  FailuresQuery,
  IntentsQuery,
  RangeQuery,
  toAuditFilter,
  toTimeRange,
} from '../../src/ledger/auditFilters';
import {
  microsToIso,
  nowMicros,
  parseTimeRef,
  resolveTimeRef,
} from '../../src/ledger/micros';
import { splitOnWholeHours } from '../../src/ledger/auditAggregates';
import { decodeCursor, encodeCursor } from '../../src/ledger/cursor';
import { parseOrThrow } from '../../src/api/problem';

const NOW = nowMicros(Date.parse('2026-11-26T12:00:00Z'));
const HOUR = 3_600_000_000n;
const DAY = 24n * HOUR;

function fieldsOf(schema: Parameters<typeof parseOrThrow>[0], query: unknown): string[] {
  try {
    parseOrThrow(schema, query);
  } catch (err) {
    if (err instanceof ValidationError) return err.issues.map((issue) => issue.field);
    throw err;
  }
  return [];
}

describe('relative and absolute times', () => {
  test.each([
    ['30m', 30n * 60_000_000n],
    ['24h', DAY],
    ['7d', 7n * DAY],
    ['2w', 14n * DAY],
  ])('%s means now minus that', (text, span) => {
    expect(resolveTimeRef(parseTimeRef(text)!, NOW)).toBe(NOW - span);
  });

  test('ISO dates and date-times with an offset keep every microsecond', () => {
    expect(parseTimeRef('2026-11-20')).toEqual({ instant: BigInt(Date.parse('2026-11-20T00:00:00Z')) * 1000n });
    expect(parseTimeRef('2026-11-20T08:00:00Z')).toEqual({ instant: BigInt(Date.parse('2026-11-20T08:00:00Z')) * 1000n });
    expect(parseTimeRef('2026-11-20T09:30:00.123456+01:30')).toEqual({
      instant: BigInt(Date.parse('2026-11-20T08:00:00.123Z')) * 1000n + 456n,
    });
    expect(parseTimeRef('2026-11-20T08:00Z')).toEqual(parseTimeRef('2026-11-20T08:00:00.000000Z'));
  });

  test.each([
    '2026-02-30',
    '2026-13-01',
    '2026-11-20T24:00:00Z',
    '2026-11-20T08:00:00', // no offset: it would mean the server's time zone
    '2026-11-20T08:00:00.1234567Z',
    '0000-01-01',
    'yesterday',
    '7',
    'd7',
    '-7d',
    '7y',
    '99999999d',
    '',
    "2026-11-20' OR 1=1 --",
  ])('%j is not a time', (text) => {
    expect(parseTimeRef(text)).toBeUndefined();
  });

  test('microsecond instants print back as the same ISO text and parse back to the same instant', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 253402300799999999n }), (micros) => {
        const iso = microsToIso(micros);
        expect(parseTimeRef(iso)).toEqual({ instant: micros });
      }),
    );
  });
});

describe('the audit query string', () => {
  test('an unknown parameter is a 400 naming it', () => {
    expect(fieldsOf(AuditQuery, { service: 'kuma', servce: 'kuma' })).toEqual(['servce']);
    expect(fieldsOf(FailuresQuery, { status: 'failed' })).toEqual(['status']);
    expect(fieldsOf(RangeQuery, { limit: '5' })).toEqual(['limit']);
  });

  test.each([['0'], ['501'], ['10000'], ['-1'], ['2.5'], ['many'], ['']])('limit=%j is refused', (limit) => {
    expect(fieldsOf(AuditQuery, { limit })).toEqual(['limit']);
  });

  test('limit defaults to 50 and accepts 1 and 500', () => {
    expect(parseOrThrow(AuditQuery, {}).limit).toBe(50);
    expect(parseOrThrow(AuditQuery, { limit: '1' }).limit).toBe(1);
    expect(parseOrThrow(AuditQuery, { limit: '500' }).limit).toBe(500);
  });

  test('bad dates, statuses, intents and flags name their field', () => {
    expect(fieldsOf(AuditQuery, { from: 'last tuesday' })).toEqual(['from']);
    expect(fieldsOf(AuditQuery, { to: '2026-02-30' })).toEqual(['to']);
    expect(fieldsOf(AuditQuery, { status: 'failed,exploded' })).toEqual(['status[1]']);
    expect(fieldsOf(AuditQuery, { intent: 'deploykuma' })).toEqual(['intent']);
    expect(fieldsOf(AuditQuery, { intent: 'launch_kuma' })).toEqual(['intent']);
    expect(fieldsOf(AuditQuery, { changed: 'yes' })).toEqual(['changed']);
    expect(fieldsOf(AuditQuery, { failureClass: 'gremlins' })).toEqual(['failureClass']);
    expect(fieldsOf(AuditQuery, { service: ['kuma', 'dns'] })).toEqual(['service']);
  });

  test('SQL in a value is a value: refused where the field has a shape, kept verbatim where it has none', () => {
    expect(fieldsOf(AuditQuery, { service: "' OR 1=1 --" })).toEqual(['service']);
    expect(fieldsOf(AuditQuery, { taskId: "x'; DROP TABLE tasks; --" })).toEqual(['taskId']);
    const query = parseOrThrow(AuditQuery, { agent: "a' OR '1'='1" });
    expect(toAuditFilter(query, NOW)).toEqual({ agent: "a' OR '1'='1" });
  });

  test('filters combine: intent adds its action and service to the others', () => {
    const query = parseOrThrow(AuditQuery, {
      status: 'failed,timed_out,failed',
      service: 'dns',
      intent: 'deploy_kuma',
      changed: 'false',
      from: '7d',
      to: '2026-11-26T11:00:00Z',
    });
    expect(toAuditFilter(query, NOW)).toEqual({
      statuses: ['failed', 'timed_out'],
      services: ['dns', 'kuma'],
      actions: ['deploy'],
      changed: false,
      from: NOW - 7n * DAY,
      to: NOW - HOUR,
    });
  });

  test('the failures query takes the list filters that make sense for failed rows', () => {
    const query = parseOrThrow(FailuresQuery, { failureClass: 'timeout', service: 'kuma', agent: 'a1', action: 'deploy', from: '1d' });
    expect(toAuditFilter(query, NOW)).toEqual({
      services: ['kuma'],
      actions: ['deploy'],
      failureClass: 'timeout',
      agent: 'a1',
      from: NOW - DAY,
    });
  });

  test('from must come before to', () => {
    const query = parseOrThrow(AuditQuery, { from: '1h', to: '2h' });
    expect(() => toAuditFilter(query, NOW)).toThrow(ValidationError);
    expect(() => toTimeRange(parseOrThrow(RangeQuery, { from: '2026-11-26T12:00:00Z', to: '2026-11-26T12:00:00Z' }), NOW)).toThrow(
      'from (2026-11-26T12:00:00.000Z) must be before to',
    );
  });

  test('aggregate ranges default to the seven days before to', () => {
    expect(toTimeRange(parseOrThrow(RangeQuery, {}), NOW)).toEqual({ from: NOW - 7n * DAY, to: NOW });
    expect(toTimeRange(parseOrThrow(IntentsQuery, { to: '1d' }), NOW)).toEqual({ from: NOW - 8n * DAY, to: NOW - DAY });
  });
});

describe('cursors', () => {
  const secret = 'a-test-secret-of-some-length';

  test('a cursor carries its position exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }), fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }), (micros, id) => {
        const position = { createdAtMicros: micros, id: id.toString() };
        expect(decodeCursor(encodeCursor(position, secret), secret)).toEqual(position);
      }),
    );
  });

  test('a tampered, foreign or garbage cursor is a 400 naming cursor', () => {
    const cursor = encodeCursor({ createdAtMicros: 1_764_000_000_000_000n, id: '42' }, secret);
    const [payload, tag] = cursor.split('.') as [string, string];
    const forged = `${Buffer.from('1764000000000000:41').toString('base64url')}.${tag}`;
    for (const bad of [forged, `${payload}.${tag.slice(1)}`, `${payload}x.${tag}`, 'garbage', '', '..', `${cursor}.x`]) {
      expect(() => decodeCursor(bad, secret)).toThrow(ValidationError);
      try {
        decodeCursor(bad, secret);
      } catch (err) {
        expect((err as ValidationError).issues.map((i) => i.field)).toEqual(['cursor']);
      }
    }
    expect(() => decodeCursor(cursor, 'another-secret-entirely')).toThrow(ValidationError);
  });
});

describe('splitting a range on whole hours', () => {
  const at = (iso: string) => nowMicros(Date.parse(iso));

  test('whole hours in the middle, partial hours at the ends', () => {
    expect(splitOnWholeHours({ from: at('2026-11-26T10:15:00Z'), to: at('2026-11-26T13:30:00Z') })).toEqual({
      whole: { from: at('2026-11-26T11:00:00Z'), to: at('2026-11-26T13:00:00Z') },
      edges: [
        { from: at('2026-11-26T10:15:00Z'), to: at('2026-11-26T11:00:00Z') },
        { from: at('2026-11-26T13:00:00Z'), to: at('2026-11-26T13:30:00Z') },
      ],
    });
  });

  test('a range without a whole hour is all edge', () => {
    const range = { from: at('2026-11-26T10:15:00Z'), to: at('2026-11-26T11:30:00Z') };
    const split = splitOnWholeHours(range);
    expect(split.edges[0]).toEqual(range);
    expect(split.whole.from).toBe(split.whole.to);
    expect(split.edges[1].from).toBe(split.edges[1].to);
  });

  test('the parts always cover the range exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 17n }), fc.bigInt({ min: 1n, max: 30n * DAY }), (from, span) => {
        const { whole, edges } = splitOnWholeHours({ from, to: from + span });
        const parts = [edges[0], whole, edges[1]].filter((p) => p.to > p.from);
        expect(parts.reduce((sum, p) => sum + (p.to - p.from), 0n)).toBe(span);
        expect(parts[0]!.from).toBe(from);
        parts.slice(1).forEach((p, i) => expect(p.from).toBe(parts[i]!.to));
        if (whole.to > whole.from) expect([whole.from % HOUR, whole.to % HOUR]).toEqual([0n, 0n]);
      }),
    );
  });
});
