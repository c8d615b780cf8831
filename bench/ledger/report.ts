import { verdict } from '../support/stats';

/** One line of the final table; `met` is absent for figures that have no target. */
export type Figure = { label: string; measured: string; target?: string; met?: boolean };

export class Figures {
  readonly all: Figure[] = [];

  add(figure: Figure): void {
    this.all.push(figure);
    const line = figure.met === undefined ? `      ${figure.label}: ${figure.measured}` : verdict(figure.label, figure.met, targetDetail(figure));
    console.log(`  ${line}`);
  }

  /** True when every figure with a target met it. */
  allMet(): boolean {
    return this.all.every((f) => f.met !== false);
  }

  /** The compact table printed at the end: figure, measured, target, verdict. */
  table(): string {
    const rows = this.all.map((f) => [f.label, f.measured, f.target ?? '', f.met === undefined ? '' : f.met ? 'PASS' : 'FAIL']);
    const header = ['figure', 'measured', 'target', ''];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
    return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
  }
}

function targetDetail(figure: Figure): string {
  return figure.target ? `${figure.measured} (target ${figure.target})` : figure.measured;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function perSecond(n: number): string {
  return `${Math.round(n).toLocaleString('en-US')}/s`;
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

export function ratio(n: number): string {
  return n >= 10 ? `${n.toFixed(0)}x` : `${n.toFixed(2)}x`;
}
