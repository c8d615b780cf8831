/** A phase did not finish within its bound; the message says how far it got. */
export class BenchStalled extends Error {
  override name = 'BenchStalled';
}

/** Polls `check` until it returns a value; past the deadline, stalls with `reached()`. */
export async function until<T>(
  check: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs: number; what: string; reached: () => string },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new BenchStalled(`${opts.what} did not happen within ${opts.timeoutMs / 1000} s; reached: ${opts.reached()}`);
    }
    await sleep(opts.intervalMs);
  }
}

/**
 * Settles with `work`, or stalls after `timeoutMs` saying what was reached; the work is not
 * cancelled, so loops feeding it should check what the stall sets (see runConcurrently).
 */
export async function within<T>(work: Promise<T>, timeoutMs: number, what: string, reached: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stall = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BenchStalled(`${what} did not finish within ${timeoutMs / 1000} s; reached: ${reached()}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([work, stall]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs fn(0..count-1) from `concurrency` loops taking the next index, like that many clients.
 * Once `abandoned()` says so (the caller stalled and gave up), the loops take no more work.
 */
export async function runConcurrently(
  count: number,
  concurrency: number,
  fn: (i: number) => Promise<void>,
  abandoned: () => boolean = () => false,
): Promise<void> {
  let next = 0;
  const loop = async () => {
    for (let i = next++; i < count && !abandoned(); i = next++) await fn(i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, loop));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
