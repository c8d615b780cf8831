import { AnsibleEventFold } from '../../activities/ansibleEvents';

const events = [
  { _event: 'v2_playbook_on_play_start', play: { name: 'web' } },
  { _event: 'v2_playbook_on_task_start', task: { name: 'install' } },
  { _event: 'v2_runner_on_ok', hosts: { a: { changed: true }, b: { changed: false } } },
  { _event: 'v2_playbook_on_task_start', task: { name: 'restart' } },
  { _event: 'v2_runner_on_failed', hosts: { a: { failed: true, msg: 'unit not found' } } },
  { _event: 'v2_runner_on_unreachable', hosts: { b: { unreachable: true, msg: 'ssh timeout' } } },
  {
    _event: 'v2_playbook_on_stats',
    stats: {
      a: { ok: 1, changed: 1, failures: 1, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 },
      b: { ok: 1, changed: 0, failures: 0, unreachable: 1, skipped: 0, rescued: 0, ignored: 0 },
    },
  },
].map((e) => JSON.stringify(e));

describe('AnsibleEventFold', () => {
  test('folds jsonl events into counts, steps, key messages and readable lines', () => {
    const fold = new AnsibleEventFold();
    const lines = events.flatMap((line) => fold.accept(line));
    expect(fold.counts).toEqual({ ok: 2, changed: 1, failed: 1, unreachable: 1, skipped: 0, rescued: 0, ignored: 0 });
    expect(fold.steps).toEqual([
      { play: 'web', task: 'install', host: 'a', status: 'changed' },
      { play: 'web', task: 'install', host: 'b', status: 'ok' },
      { play: 'web', task: 'restart', host: 'a', status: 'failed' },
      { play: 'web', task: 'restart', host: 'b', status: 'unreachable' },
    ]);
    expect(fold.keyMessages).toEqual(['restart on a: unit not found', 'restart on b: ssh timeout']);
    expect(fold.complete).toBe(true);
    expect(lines).toContain('TASK [restart]');
    expect(lines).toContain('failed: [a] unit not found');
    expect(lines[lines.length - 1]).toBe('RECAP b: ok=1 changed=0 failed=0 unreachable=1 skipped=0');
  });

  test('reports the current play and task for heartbeats', () => {
    const fold = new AnsibleEventFold();
    events.slice(0, 4).forEach((line) => fold.accept(line));
    expect(fold.progress).toEqual({ play: 'web', task: 'restart', stepsDone: 2 });
    expect(fold.complete).toBe(false);
  });

  test('keeps a line that is not JSON (a warning) as it is', () => {
    const fold = new AnsibleEventFold();
    expect(fold.accept('[WARNING]: provided hosts list is empty')).toEqual(['[WARNING]: provided hosts list is empty']);
    expect(fold.accept('   ')).toEqual([]);
  });
});
