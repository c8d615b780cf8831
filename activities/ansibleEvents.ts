import type { FailedResult, PlaybookCounts, PlaybookProgress, PlaybookStep } from '../contracts';

/** Replaces every secret in a text with `[secret]`. */
export type Scrub = (text: string) => string;

const REDACTED = '[secret]';
/** Shorter lines of a multi-line secret are left: a few characters give nothing away, and would blank out common text. */
const MIN_SECRET_LINE = 4;

/**
 * A scrubber for what a playbook prints. A secret can come out raw, JSON-escaped by the callback
 * (with or without non-ASCII escaped: Python's json escapes it by default), or, when it spans
 * lines, one line at a time in stderr; each form is replaced, the longest first.
 */
export function secretScrubber(secrets: string[]): Scrub {
  const forms = [...new Set(secrets.filter((s) => s.length > 0).flatMap(printedForms))].sort((a, b) => b.length - a.length);
  if (forms.length === 0) return (text) => text;
  return (text) => forms.reduce((out, form) => out.split(form).join(REDACTED), text);
}

function printedForms(secret: string): string[] {
  const json = JSON.stringify(secret).slice(1, -1);
  const asciiJson = json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const lines = secret.includes('\n') ? secret.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length >= MIN_SECRET_LINE) : [];
  return [secret, json, asciiJson, ...lines];
}

/** Every string of a parsed event, keys too, scrubbed before anything is cut or re-encoded. */
function scrubDeep<T>(value: T, scrub: Scrub): T {
  if (typeof value === 'string') return scrub(value) as T;
  if (Array.isArray(value)) return value.map((item) => scrubDeep(item, scrub)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [scrub(k), scrubDeep(v, scrub)])) as T;
  }
  return value;
}

/**
 * Folds the `ansible.posix.jsonl` callback's events (one JSON object per line) into the
 * summary the ledger keeps: counts, steps executed, the failing tasks' messages, readable
 * output lines, and the current play/task for heartbeats. Everything it keeps is scrubbed of the
 * task's secrets: play and task names are templated, so they can hold one too.
 */
export class AnsibleEventFold {
  readonly steps: PlaybookStep[] = [];
  readonly keyMessages: string[] = [];
  /** The failing results with their return code and stderr, the evidence the failure-class rules read. */
  readonly failedResults: FailedResult[] = [];
  counts: PlaybookCounts = emptyCounts();
  private play = '';
  private task = '';
  private sawStats = false;

  constructor(private readonly scrub: Scrub = (text) => text) {}

  /** Returns the readable line(s) for the event, for the output tail. */
  accept(line: string): string[] {
    let event: AnsibleEvent;
    try {
      event = scrubDeep(JSON.parse(line) as AnsibleEvent, this.scrub);
    } catch {
      return line.trim() ? [this.scrub(line)] : [];
    }
    return this.readable(event).map(this.scrub);
  }

  private readable(event: AnsibleEvent): string[] {
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
      const message = resultMessage(result, this.scrub);
      if (status === 'failed' || status === 'unreachable') {
        this.keyMessages.push(`${this.task} on ${host}: ${message ?? status}`);
        if (status === 'failed') this.failedResults.push(failedResult(this.task, host, result, this.scrub));
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

type HostResult = { changed?: boolean; failed?: boolean; msg?: unknown; stderr?: string; module_stderr?: string; rc?: unknown; action?: unknown; unreachable?: boolean };

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

/** Cut to 1,000 characters only once scrubbed, so that no cut can split a secret out of sight. */
function resultMessage(result: HostResult, scrub: Scrub): string | undefined {
  const msg = typeof result.msg === 'string' ? result.msg : result.msg === undefined ? undefined : JSON.stringify(result.msg);
  const text = msg || result.stderr || undefined;
  return text ? scrub(text).slice(0, 1000) : undefined;
}

function failedResult(task: string, host: string, result: HostResult, scrub: Scrub): FailedResult {
  const msg = typeof result.msg === 'string' ? result.msg : result.msg === undefined ? '' : JSON.stringify(result.msg);
  const stderr = [result.stderr, result.module_stderr].filter((t): t is string => typeof t === 'string' && t.length > 0).join('\n');
  return {
    task,
    host,
    ...(typeof result.action === 'string' ? { action: result.action } : {}),
    rc: typeof result.rc === 'number' ? result.rc : null,
    msg: scrub(msg).slice(0, 1000),
    stderr: scrub(stderr).slice(-1000),
  };
}

function emptyCounts(): PlaybookCounts {
  return { ok: 0, changed: 0, failed: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 };
}
