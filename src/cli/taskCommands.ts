import fs from 'node:fs';
import type { Command } from 'commander';
import type { LiveTask, SubmitTaskResponse } from '../../contracts';
import { cliApiClient } from './apiTarget';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `submit`, the operator commands, `queue` and `agent-remove`, all through the REST API. */
export function registerTaskCommands(program: Command): void {
  program
    .command('submit')
    .description('Submit a task (flags, or --file with the JSON body); --follow shows it live until it ends.')
    .option('--file <path>', 'JSON body of POST /api/v1/tasks')
    .option('--task-id <id>', 'idempotency key')
    .option('--action <action>', 'deploy, add, remove, restart, update, configure, backup, restore, rollback or check')
    .option('--service <name>', 'a service the task touches (repeatable)', collect)
    .option('--playbook <path>', 'playbook path inside the playbooks folder')
    .option('--inventory <inventory>', 'inventory path inside the playbooks folder, or "localhost," (a host list may name only this machine)')
    .option('--var <key=value>', 'extra variable (repeatable)', collect)
    .option('--secret <key=value>', 'secret variable: passed to the playbook, never stored (repeatable)', collect)
    .option('--priority <n>', 'higher runs first (0-100)', Number)
    .option('--cpu <cores>', 'CPU the task needs', Number)
    .option('--memory-mb <mb>', 'memory the task needs', Number)
    .option('--gpu-vram-mb <mb>', 'GPU VRAM the task needs', Number)
    .option('--max-wait <seconds>', 'how long the task may wait for an agent before it fails (default OPSLEDGER_MAX_WAIT_S)', Number)
    .option('--check', 'run ansible-playbook --check')
    .option('--requested-by <who>', "a note kept in the queued row; its actor is the token's principal")
    .option('--follow', 'show the live state until the task ends; exit 1 unless it succeeded')
    .action(async (opts: SubmitOptions) => {
      const api = cliApiClient();
      // The API validates the body and names any bad field in its answer.
      const { taskId, existing } = await api.call<SubmitTaskResponse>('POST', '/api/v1/tasks', submitBody(opts));
      console.log(`${existing ? 'already submitted' : 'submitted'}: ${taskId}`);
      if (!opts.follow) return;
      // A person watching wants the playbook's current task too, which changes without a new row.
      const final = await api.follow(taskId, (state) => console.log(describeState(state)), { progressEveryS: 2 });
      process.exitCode = final.status === 'succeeded' ? 0 : 1;
    });

  for (const [name, help] of [
    ['pause', 'hold a waiting task: it keeps its place but is not resumed automatically'],
    ['resume', 'release an operator hold'],
    ['override', 'dispatch a waiting task now, ignoring capacity'],
    ['cancel', 'cancel a task; a running playbook is killed'],
  ] as const) {
    const command = program
      .command(`${name} <taskId>`)
      .description(help)
      .option('--by <who>', "a note of who asks, kept beside the actor: the token's principal")
      .option('--reason <text>');
    if (name === 'override') command.option('--agent <agentId>', 'dispatch to this agent');
    command.action(async (taskId: string, opts: { by?: string; reason?: string; agent?: string }) => {
      const body = Object.fromEntries(
        Object.entries({ by: opts.by, reason: opts.reason, agentId: opts.agent }).filter(([, v]) => v !== undefined),
      ) as Record<string, string>;
      console.log(describeState(await cliApiClient().command(taskId, name, body)));
    });
  }

  program
    .command('queue')
    .description('Tasks waiting before dispatch, in dispatch order.')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const queue = await cliApiClient().queue();
      if (opts.json) return console.log(JSON.stringify(queue, null, 2));
      if (queue.dispatch.held) console.log(`dispatch is held by ${queue.dispatch.heldBy}`);
      if (queue.tasks.length === 0) return console.log('no task is waiting');
      console.table(
        queue.tasks.map((t) => ({
          '#': t.position,
          task: t.taskId,
          priority: t.priority,
          waiting: t.heldBy ? `held by ${t.heldBy}` : t.reason,
          shortfall: t.shortfall ?? '',
          since: t.enqueuedAt,
        })),
      );
    });

  program
    .command('agent-remove <agentId>')
    .description('forget an agent (admin token): its reservations are freed, grants not yet handed to it wait again')
    .action(async (agentId: string) => {
      await cliApiClient().call('DELETE', `/api/v1/agents/${encodeURIComponent(agentId)}`);
      console.log(`agent ${agentId} removed`);
    });

  for (const held of [true, false]) {
    program
      .command(`dispatch-${held ? 'hold' : 'release'}`)
      .description(held ? 'hold all dispatch (maintenance)' : 'release the dispatch hold')
      .option('--by <who>')
      .action(async (opts: { by?: string }) => {
        const state = await cliApiClient().dispatchHold(held, opts.by);
        console.log(state.held ? 'dispatch is held' : 'dispatch is released');
      });
  }
}

type SubmitOptions = {
  file?: string; taskId?: string; action?: string; service?: string[]; playbook?: string; inventory?: string;
  var?: string[]; secret?: string[]; priority?: number; cpu?: number; memoryMb?: number; gpuVramMb?: number;
  maxWait?: number; check?: boolean; requestedBy?: string; follow?: boolean;
};

function submitBody(opts: SubmitOptions): Record<string, unknown> {
  const fromFile = opts.file ? (JSON.parse(fs.readFileSync(opts.file, 'utf8')) as Record<string, unknown>) : {};
  const requirements = Object.fromEntries(
    Object.entries({ cpu: opts.cpu, memoryMb: opts.memoryMb, gpuVramMb: opts.gpuVramMb }).filter(([, v]) => v !== undefined),
  );
  const flags: Record<string, unknown> = {
    taskId: opts.taskId,
    action: opts.action,
    services: opts.service,
    playbook: opts.playbook,
    inventory: opts.inventory,
    extraVars: opts.var && keyValues(opts.var),
    secretVars: opts.secret && keyValues(opts.secret),
    priority: opts.priority,
    requirements: Object.keys(requirements).length ? requirements : undefined,
    maxWaitS: opts.maxWait,
    checkMode: opts.check,
    requestedBy: opts.requestedBy,
  };
  return { ...fromFile, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) };
}

function keyValues(pairs: string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const cut = pair.indexOf('=');
      if (cut <= 0) throw new Error(`expected key=value, got ${pair}`);
      return [pair.slice(0, cut), pair.slice(cut + 1)];
    }),
  );
}

export function describeState(state: Pick<LiveTask, 'taskId' | 'status' | 'waiting' | 'progress' | 'agent' | 'failureClass'>): string {
  switch (state.status) {
    case 'paused': {
      const w = state.waiting;
      if (!w) return `${state.taskId}: waiting`;
      if (w.reason === 'operator_hold') return `${state.taskId}: held by ${w.heldBy ?? 'an operator'}`;
      if (w.reason === 'dispatch_hold') return `${state.taskId}: waiting, dispatch is held`;
      const until = w.deadline ? `, fails at ${w.deadline} unless dispatched` : '';
      return `${state.taskId}: waiting for capacity${w.shortfall ? ` (${w.shortfall})` : ''}${w.position ? `, #${w.position} in queue` : ''}${until}`;
    }
    case 'running':
      return `${state.taskId}: running on ${state.agent}${state.progress?.task ? `: TASK [${state.progress.task}]` : ''}`;
    case 'failed':
    case 'timed_out':
    case 'cancelled':
      return `${state.taskId}: ${state.status}${state.failureClass ? ` (${state.failureClass})` : ''}`;
    default:
      return `${state.taskId}: ${state.status}${state.agent ? ` on ${state.agent}` : ''}`;
  }
}
