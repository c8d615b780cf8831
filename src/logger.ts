import pino from 'pino';
import pretty from 'pino-pretty';

const options: pino.LoggerOptions = {
  level: process.env.LOG_LEVEL ?? 'info',
  base: { service: 'opsledger' },
  timestamp: pino.stdTimeFunctions.isoTime,
  redact: { paths: ['secretVars', '*.secretVars', 'input.secretVars'], censor: '[secret]' },
};

/**
 * Logs go to stderr, so that what a command answers on stdout (a verify result, a table, JSON for
 * a script) never has a log line mixed into it, whatever a slow query warns about meanwhile.
 * A person at a terminal reads one line an event (time, level, message, its fields); anything else
 * (a pipe, a file, a log collector) gets one JSON object a line. Synchronous, so the last lines
 * before an exit are not lost.
 */
function destination(): pino.DestinationStream {
  if (!process.stderr.isTTY) return pino.destination({ fd: 2, sync: true });
  return pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,service', singleLine: true });
}

/** Structured logs on stderr; every line about a task carries `taskId` (use `forTask`). */
export const logger = pino(options, destination());

export type Logger = pino.Logger;

export function forTask(taskId: string, parent: Logger = logger): Logger {
  return parent.child({ taskId });
}
