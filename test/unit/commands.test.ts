import fs from 'node:fs';
import fc from 'fast-check';
import { API_COMMAND_FIELDS, checkCommand, COMMAND_FIELDS, COMMAND_INPUT, OPERATOR_COMMANDS, stringRuleProblem } from '../../contracts';
import { testEnv } from '../support/testEnv';

/**
 * The Update validators check commands with commandRules.ts, the API with the zod schemas built
 * from the same rules: whatever the input, both must give the same answer.
 */
describe('operator command rules', () => {
  test('each command schema has exactly the fields its rules name', () => {
    for (const name of OPERATOR_COMMANDS) {
      expect(Object.keys(COMMAND_INPUT[name].shape).sort()).toEqual(Object.keys(COMMAND_FIELDS[name]).sort());
    }
  });

  const text = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.constantFrom('', 'vm-1', '../etc', 'a'.repeat(128), 'a'.repeat(129)),
    fc.integer({ min: 195, max: 1005 }).map((n) => 'x'.repeat(n)),
  );
  const value = fc.oneof({ weight: 6, arbitrary: text }, fc.integer(), fc.constant(null), fc.boolean());
  const command = fc.dictionary(fc.constantFrom('by', 'reason', 'agentId', 'force', 'principal'), value, { maxKeys: 5 });

  test('the validators refuse exactly what the API refuses, the principal the API adds apart', () => {
    fc.assert(
      fc.property(fc.constantFrom(...OPERATOR_COMMANDS), command, (name, input) => {
        const { principal, ...body } = input;
        const refusedByApi =
          !COMMAND_INPUT[name].safeParse(body).success ||
          ('principal' in input && stringRuleProblem(API_COMMAND_FIELDS.principal, principal) !== undefined);
        const refusedByWorkflow = (() => {
          try {
            checkCommand(name, input);
            return false;
          } catch {
            return true;
          }
        })();
        expect(refusedByWorkflow).toBe(refusedByApi);
      }),
      { numRuns: 2000 },
    );
  });

  test('no REST body may carry the principal; the Update takes it as the API adds it', () => {
    for (const name of OPERATOR_COMMANDS) {
      expect(COMMAND_INPUT[name].safeParse({ principal: 'test-admin' }).success).toBe(false);
      expect(() => checkCommand(name, { by: 'alice', principal: 'test-operator' })).not.toThrow();
      expect(() => checkCommand(name, { principal: '' })).toThrow(/principal/);
    }
  });

  test('the workflow bundle carries no zod, which it would evaluate anew for every workflow', () => {
    expect(fs.readFileSync(testEnv('workflowBundle'), 'utf8')).not.toMatch(/node_modules\/zod\//);
  });
});
