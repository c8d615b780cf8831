import type { PlaybookCounts, PlaybookProgress, PlaybookStep } from '../contracts';

/**
 * Folds the `ansible.posix.jsonl` callback's events (one JSON object per line) into the
 * summary the ledger keeps: counts, steps executed, the failing tasks' messages, readable
 * output lines, and the current play/task for heartbeats.
 */
export class AnsibleEventFold {
  readonly steps: PlaybookStep[] = [];
  readonly keyMessages: string[] = [];
  counts: PlaybookCounts = emptyCounts();
  private play = '';
  private task = '';
  private sawStats = false;

  /** Returns the readable line(s) for the event, for the output tail. */
  accept(line: string): string[] {
    let event: AnsibleEvent;
    try {
      event = JSON.parse(line) as AnsibleEvent;
    } catch {
      return line.trim() ? [line] : [];
    }
    switch (event._event) {
      case 'v2_playbook_on_play_start':
        this.play = event.play?.name ?? '';
        return [`PLAY [${this.play}]`];
      case 'v2_playbook_on_task_start':
        this.task = event.task?.name ?? '';
        return [`TASK [${this.task}]`];
      case 'v2_runner_on_ok':
      case 'v2_runner_on_failed':
      case 'v2_runner_on_skipped':
      case 'v2_runner_on_unreachable':
        return this.acceptResult(event);
      case 'v2_playbook_on_stats':
        this.acceptStats(event);
        return Object.entries(event.stats ?? {}).map(
          ([host, s]) =>
            `RECAP ${host}: ok=${s.ok ?? 0} changed=${s.changed ?? 0} failed=${s.failures ?? 0} unreachable=${s.unreachable ?? 0} skipped=${s.skipped ?? 0}`,
        );
      default:
        return [];
    }
  }

  get progress(): PlaybookProgress {
    return { play: this.play || undefined, task: this.task || undefined, stepsDone: this.steps.length };
  }

  /** True once the closing stats arrived, i.e. the playbook ran to its end. */
  get complete(): boolean {
    return this.sawStats;
  }

  private acceptResult(event: AnsibleEvent): string[] {
    const lines: string[] = [];
    for (const [host, result] of Object.entries(event.hosts ?? {})) {
      const status = stepStatus(event._event, result);
      this.steps.push({ play: this.play, task: this.task, host, status });
      const message = resultMessage(result);
      if (status === 'failed' || status === 'unreachable') {
        this.keyMessages.push(`${this.task} on ${host}: ${message ?? status}`);
      }
      lines.push(`${status}: [${host}]${message ? ` ${message}` : ''}`);
    }
    return lines;
  }

  private acceptStats(event: AnsibleEvent): void {
    this.sawStats = true;
    const counts = emptyCounts();
    for (const s of Object.values(event.stats ?? {})) {
      counts.ok += s.ok ?? 0;
      counts.changed += s.changed ?? 0;
      counts.failed += s.failures ?? 0;
      counts.unreachable += s.unreachable ?? 0;
      counts.skipped += s.skipped ?? 0;
      counts.rescued += s.rescued ?? 0;
      counts.ignored += s.ignored ?? 0;
    }
    this.counts = counts;
  }
}

type HostResult = { changed?: boolean; failed?: boolean; msg?: unknown; stderr?: string; unreachable?: boolean };

type AnsibleEvent = {
  _event: string;
  play?: { name?: string };
  task?: { name?: string };
  hosts?: Record<string, HostResult>;
  stats?: Record<string, Partial<Record<'ok' | 'changed' | 'failures' | 'unreachable' | 'skipped' | 'rescued' | 'ignored', number>>>;
};

function stepStatus(event: string, result: HostResult): PlaybookStep['status'] {
  if (event === 'v2_runner_on_failed') return 'failed';
  if (event === 'v2_runner_on_unreachable') return 'unreachable';
  if (event === 'v2_runner_on_skipped') return 'skipped';
  return result.changed ? 'changed' : 'ok';
}

function resultMessage(result: HostResult): string | undefined {
  const msg = typeof result.msg === 'string' ? result.msg : result.msg === undefined ? undefined : JSON.stringify(result.msg);
  const text = msg || result.stderr || undefined;
  return text ? text.slice(0, 1000) : undefined;
}

function emptyCounts(): PlaybookCounts {
  return { ok: 0, changed: 0, failed: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 };
}
