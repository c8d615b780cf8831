import { leakForms, leakScan, newCanary } from '../../bench/soak/canary';

describe('the soak canary', () => {
  const canary = newCanary();

  it('is seen as is', () => {
    const scan = leakScan(canary.value, canary.sha256);
    scan.text('log', 'api.log', `{"msg":"oops","secret":"${canary.value}"}`);
    expect(scan.leaks()).toEqual(['log api.log']);
  });

  it('is seen base64-encoded at any offset, as a history payload carries it', () => {
    for (let prefix = 0; prefix < 6; prefix++) {
      const payload = `${'x'.repeat(prefix)}{"secretVars":{"soak_secret":"${canary.value}"}}`;
      const encoded = Buffer.from(payload).toString('base64');
      expect(leakForms(canary.value).some((form) => encoded.includes(form))).toBe(true);
    }
  });

  it('is not seen where another value is, and counts each place scanned and where the witness shows', () => {
    const scan = leakScan(canary.value, canary.sha256);
    const other = newCanary().value;
    scan.text('history', 'a', other);
    scan.text('history', 'b', Buffer.from(`{"v":"${other}"}`).toString('base64'));
    scan.text('ledger row', 'c', canary.sha256);
    expect(scan.leaks()).toEqual([]);
    expect(Object.fromEntries(scan.counts())).toEqual({ history: { scanned: 2, witnessed: 0 }, 'ledger row': { scanned: 1, witnessed: 1 } });
  });
});
