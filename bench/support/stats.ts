/** Nearest-rank percentile of values (any order); NaN for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

/** One line a reader can grep: the figure, the target and whether it was met. */
export function verdict(label: string, met: boolean, detail: string): string {
  return `${met ? 'PASS' : 'FAIL'}  ${label}: ${detail}`;
}
