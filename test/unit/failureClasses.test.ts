import fs from 'node:fs';
import path from 'node:path';
import { AnsibleEventFold } from '../../activities/ansibleEvents';
import { oomReportsBetween } from '../../activities/kernelLog';
import type { PlaybookRun } from '../../contracts';
import { classifyRun, runFailureClass } from '../../workflows/failureClasses';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'ansible');

/** A failed run as the runner builds it, from a captured real event stream. */
function runFrom(fixture: string, over: { peakMemoryMb?: number; gpuVramMb?: number | null; playbookSignal?: string | null } = {}): PlaybookRun {
  const fold = new AnsibleEventFold();
  for (const line of fs.readFileSync(path.join(FIXTURES, fixture), 'utf8').split('\n')) if (line.trim()) fold.accept(line);
  return {
    result: 'failed',
    exitCode: 2,
    counts: fold.counts,
    keyMessages: [...fold.keyMessages],
    steps: fold.steps,
    outputTail: [],
    resources: { cpuTimeS: 0.5, wallTimeS: 1, peakMemoryMb: over.peakMemoryMb ?? 40, gpuVramMb: over.gpuVramMb ?? null, agentLoadPctAtDispatch: null },
    evidence: { playbookSignal: over.playbookSignal ?? null, failedResults: [...fold.failedResults] },
  };
}

const NEEDS = { cpu: 0.1, memoryMb: 64, gpuVramMb: 0 };

describe('failure-class rules on captured real ansible output', () => {
  test.each([
    ['memory-limit.jsonl', 'python_memory_error'],
    ['cannot-allocate-memory.jsonl', 'cannot_allocate_memory'],
    ['no-space-left.jsonl', 'no_space_left'],
    ['too-many-open-files.jsonl', 'too_many_open_files'],
  ])('%s names resource exhaustion: resource_constraint with the message kept', (fixture, rule) => {
    const { failureClass, resourceState } = classifyRun(runFrom(fixture), NEEDS);
    expect(failureClass).toBe('resource_constraint');
    expect(resourceState?.decidedBy).toContain('resource_message');
    expect(resourceState?.messages.map((m) => m.rule)).toContain(rule);
  });

  test.each(['missing-file.jsonl', 'fail-module.jsonl'])('%s stays application_error with no resource evidence', (fixture) => {
    expect(classifyRun(runFrom(fixture), NEEDS)).toEqual({ failureClass: 'application_error' });
  });

  test('a task killed by SIGKILL at or above the memory it asked for is resource_constraint', () => {
    const { failureClass, resourceState } = classifyRun(runFrom('sigkill.jsonl', { peakMemoryMb: 210 }), NEEDS);
    expect(failureClass).toBe('resource_constraint');
    expect(resourceState).toMatchObject({
      decidedBy: ['sigkill_at_memory_limit'],
      killedBySignal: [{ source: 'task', task: 'killed by SIGKILL', host: 'localhost', signal: 'SIGKILL' }],
      peakMemoryMb: 210,
      requestedMemoryMb: 64,
    });
    expect(resourceState?.contributing).toEqual(['peak memory 210 MB exceeded the 64 MB asked for']);
  });

  test('a SIGKILL below the memory asked for is no resource failure, but the kill is kept', () => {
    const { failureClass, resourceState } = classifyRun(runFrom('sigkill.jsonl', { peakMemoryMb: 30 }), { ...NEEDS, memoryMb: 512 });
    expect(failureClass).toBe('application_error');
    expect(resourceState).toMatchObject({ decidedBy: [], killedBySignal: [{ source: 'task', signal: 'SIGKILL' }] });
  });

  test('ansible-playbook itself killed by SIGKILL at its memory is resource_constraint', () => {
    const run = runFrom('fail-module.jsonl', { peakMemoryMb: 80, playbookSignal: 'SIGKILL' });
    expect(classifyRun(run, NEEDS)).toMatchObject({
      failureClass: 'resource_constraint',
      resourceState: { decidedBy: ['sigkill_at_memory_limit'], killedBySignal: [{ source: 'ansible-playbook', signal: 'SIGKILL' }] },
    });
  });

  test('an OOM kill in the agent\'s kernel log decides for a run that was killed, and only then', () => {
    const kernelOom = oomReportsBetween(2_500_000_000n, 2_501_000_000n, path.join(__dirname, '..', 'fixtures', 'kernel', 'memcg-oom.kmsg'))!;
    // Killed below the memory it asked for: only the kernel's report makes it a resource failure.
    const killed = runFrom('sigkill.jsonl', { peakMemoryMb: 30 });
    killed.evidence!.kernelOom = kernelOom;
    expect(classifyRun(killed, { ...NEEDS, memoryMb: 512 })).toMatchObject({
      failureClass: 'resource_constraint',
      resourceState: { decidedBy: ['kernel_oom'], kernelOom },
    });
    // Another process's OOM kill on the same agent says nothing about a run that failed on its own.
    const failed = runFrom('fail-module.jsonl');
    failed.evidence!.kernelOom = kernelOom;
    expect(classifyRun(failed, NEEDS).failureClass).toBe('application_error');
  });

  test('a SIGKILL at the memory the agent had available is resource_constraint, whatever the task asked for', () => {
    const run = runFrom('sigkill.jsonl', { peakMemoryMb: 210 });
    run.evidence!.availableMemoryMbAtStart = 200;
    expect(classifyRun(run, { ...NEEDS, memoryMb: 4096 })).toMatchObject({
      failureClass: 'resource_constraint',
      resourceState: { decidedBy: ['sigkill_at_memory_limit'], peakMemoryMb: 210, requestedMemoryMb: 4096, availableMemoryMbAtStart: 200 },
    });
    run.evidence!.availableMemoryMbAtStart = 8000;
    expect(classifyRun(run, { ...NEEDS, memoryMb: 4096 }).failureClass).toBe('application_error');
  });

  test('measured VRAM above the stated requirement is a contributing fact, not a class on its own', () => {
    const { failureClass, resourceState } = classifyRun(runFrom('fail-module.jsonl', { gpuVramMb: 900 }), { ...NEEDS, gpuVramMb: 512 });
    expect(failureClass).toBe('application_error');
    expect(resourceState).toMatchObject({ decidedBy: [], contributing: ['peak VRAM 900 MB exceeded the 512 MB asked for'] });
  });

  test('CUDA out of memory (message as PyTorch prints it, not captured here: no GPU) is resource_constraint', () => {
    const run = runFrom('missing-file.jsonl');
    run.evidence!.failedResults[0]!.stderr =
      'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.15 GiB';
    expect(classifyRun(run, NEEDS)).toMatchObject({ failureClass: 'resource_constraint', resourceState: { messages: [{ rule: 'cuda_out_of_memory' }] } });
  });

  test('other results keep their classes; a run with every host unreachable stays infrastructure', () => {
    const run = runFrom('fail-module.jsonl');
    expect(runFailureClass({ ...run, result: 'succeeded' })).toBeUndefined();
    expect(runFailureClass({ ...run, result: 'timed_out' })).toBe('timeout');
    expect(runFailureClass({ ...run, result: 'cancelled' })).toBe('cancelled');
    const unreachable = { ...run, counts: { ...run.counts, failed: 0, unreachable: 1 }, keyMessages: ['ssh: fork: Cannot allocate memory'] };
    expect(runFailureClass(unreachable, NEEDS)).toBe('infrastructure');
  });
});

test('a message the playbook author wrote into ansible.builtin.fail decides nothing, whatever it says', () => {
  const run = runFrom('fail-module.jsonl');
  run.evidence!.failedResults[0]!.msg = 'disk quota exceeded';
  run.keyMessages = ['break on localhost: disk quota exceeded'];
  expect(classifyRun(run, NEEDS)).toEqual({ failureClass: 'application_error' });
});
