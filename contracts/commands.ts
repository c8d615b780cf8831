import { z } from 'zod';
import { ACTOR_RULE, AGENT_ID_RULE, OPERATOR_COMMANDS, REASON_RULE, type OperatorCommandName } from './commandRules';
import { stringFrom } from './stringRule';

/**
 * An operator command, the same through REST and through the plain Temporal CLI: these schemas
 * (the REST bodies and their OpenAPI entries) and the workflow's Update validators (`checkCommand`)
 * both come from the rules of commandRules.ts.
 */

export const OperatorCommand = z
  .strictObject({
    by: stringFrom(ACTOR_RULE)
      .optional()
      .meta({ description: 'Who asks; the API defaults it to the caller, the workflow to "temporal-cli".' }),
    reason: stringFrom(REASON_RULE).optional(),
  })
  .meta({ id: 'OperatorCommand' });
export type OperatorCommand = z.infer<typeof OperatorCommand>;

export const OverrideCommand = OperatorCommand.extend({
  agentId: stringFrom(AGENT_ID_RULE)
    .optional()
    .meta({ description: 'Dispatch to this agent; else the live agent with the most headroom.' }),
}).meta({ id: 'OverrideCommand' });
export type OverrideCommand = z.infer<typeof OverrideCommand>;

/** The schema each command's body must meet. */
export const COMMAND_INPUT = {
  pause: OperatorCommand,
  resume: OperatorCommand,
  override: OverrideCommand,
  cancel: OperatorCommand,
} as const satisfies Record<OperatorCommandName, z.ZodType>;

export { OPERATOR_COMMANDS, type OperatorCommandName };
