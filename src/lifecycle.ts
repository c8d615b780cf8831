import { logger } from './logger';

/**
 * Things started by one process, closed in reverse order on SIGINT/SIGTERM (or `close()`), so
 * Ctrl-C stops the worker before the servers it talks to and leaves no child behind.
 */
export class Lifecycle {
  private closers: { name: string; close: () => Promise<void> }[] = [];
  private closing?: Promise<void>;

  add(name: string, close: () => Promise<void>): void {
    this.closers.push({ name, close });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const { name, close } of this.closers.reverse()) {
        const started = Date.now();
        try {
          await close();
          logger.info({ ms: Date.now() - started }, `${name} stopped`);
        } catch (err) {
          logger.error({ err, component: name }, `${name} did not stop cleanly`);
        }
      }
    })();
    return this.closing;
  }

  /** Resolves after a signal arrived and everything was closed. */
  closeOnSignals(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<void> {
    return new Promise((resolve) => {
      for (const signal of signals) {
        // `on`, not `once`: a second Ctrl-C must not kill us before the children are stopped.
        process.on(signal, () => {
          logger.info({ signal }, this.closing ? 'already shutting down' : 'shutting down');
          this.close().then(resolve);
        });
      }
    });
  }
}
