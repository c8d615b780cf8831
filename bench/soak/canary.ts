import crypto from 'node:crypto';

/**
 * A secret value unique to one soak run. Every soak task carries it in secretVars, and its hash
 * in extraVars, so that the playbook can check it got the secret without the secret being shown;
 * afterwards it must be found nowhere the soak can look.
 */
export type Canary = { name: string; value: string; sha256: string };

export function newCanary(): Canary {
  const value = `canary${crypto.randomBytes(16).toString('hex')}`;
  return { name: 'soak_secret', value, sha256: crypto.createHash('sha256').update(value).digest('hex') };
}

/**
 * The texts a leaked value would show as: itself, and its base64 at each of the three alignments it
 * can have inside a longer base64 text (Temporal's JSON history carries every payload so, and a
 * log may print a buffer so). Of each encoding only the characters made of the value's bytes
 * alone are kept, since the bytes around it are unknown.
 */
export function leakForms(value: string): string[] {
  const bytes = Buffer.from(value);
  const encoded = [0, 1, 2].map((offset) => {
    const text = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const firstWholeGroup = offset === 0 ? 0 : 4;
    const wholeGroupsEnd = Math.floor((offset + bytes.length) / 3) * 4;
    return text.slice(firstWholeGroup, wholeGroupsEnd);
  });
  return [value, ...encoded];
}

/**
 * Counts what was scanned, by kind of place, and names each place a leak showed in. The witness, a
 * value the tasks carry openly beside the secret (its hash), shows that a scan reads what it should:
 * a history whose payloads the scan could not read would not show it either.
 */
export type LeakScan = {
  text(kind: string, where: string, text: string): void;
  counts(): Map<string, { scanned: number; witnessed: number }>;
  leaks(): string[];
};

export function leakScan(value: string, witness: string): LeakScan {
  const forms = leakForms(value);
  const counts = new Map<string, { scanned: number; witnessed: number }>();
  const leaks: string[] = [];
  return {
    text(kind, where, text) {
      const count = counts.get(kind) ?? { scanned: 0, witnessed: 0 };
      counts.set(kind, { scanned: count.scanned + 1, witnessed: count.witnessed + (text.includes(witness) ? 1 : 0) });
      if (forms.some((form) => text.includes(form))) leaks.push(`${kind} ${where}`);
    },
    counts: () => counts,
    leaks: () => leaks,
  };
}
