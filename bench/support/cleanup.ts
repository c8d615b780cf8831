const EXIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

/**
 * What a bench starts, undone in reverse order by `close()` (safe to call twice) and also on
 * Ctrl-C or an exception nothing caught, so an interrupted bench leaves no database or server.
 */
export function cleanupOnExit(what: string): { stops: (() => Promise<void>)[]; close: () => Promise<void> } {
  const stops: (() => Promise<void>)[] = [];
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const signal of EXIT_SIGNALS) process.off(signal, onSignal);
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      for (const stop of stops.reverse()) {
        await stop().catch((err: Error) => console.error(`cleanup step failed: ${err.message}`));
      }
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`${signal}: stopping ${what}`);
    void close().then(() => process.exit(130));
  };
  const onCrash = (err: unknown) => {
    console.error(`bench crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    void close().then(() => process.exit(1));
  };
  for (const signal of EXIT_SIGNALS) process.on(signal, onSignal);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  return { stops, close };
}
