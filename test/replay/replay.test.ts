import fs from 'node:fs';
import path from 'node:path';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { Worker } from '@temporalio/worker';
import { testEnv } from '../support/testEnv';
import { HISTORIES_DIR } from './histories';

/**
 * The SDK's own historyFromJSON checks the history type against the protobufjs copy nested in
 * @temporalio/common, while the types come from the copy nested in @temporalio/proto: with the two
 * installed side by side it throws "type must be a Type". The JSON is read with the copy that made
 * the types.
 */
const { fromJson } = require(require.resolve('protobufjs/ext/protojson', {
  paths: [path.dirname(require.resolve('@temporalio/proto/package.json'))],
})) as { fromJson(type: unknown, json: unknown, options: { ignoreUnknownFields: boolean }): proto.temporal.api.history.v1.History };
// The generated module's types lack the reflection methods the patched root has.
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType('temporal.api.history.v1.History');

function readHistory(file: string): proto.temporal.api.history.v1.History {
  return fromJson(historyType, JSON.parse(fs.readFileSync(path.join(HISTORIES_DIR, file), 'utf8')), { ignoreUnknownFields: true });
}

/**
 * Workflows running when new code deploys must finish: every history recorded from an earlier
 * workflow code (recordHistories.ts) replays against today's bundle without a nondeterminism error.
 */
describe('recorded task workflow histories replay against the current workflow code', () => {
  const files = fs.readdirSync(HISTORIES_DIR).filter((file) => file.endsWith('.json')).sort();

  test('there are closed and open histories to replay', () => {
    expect(files.some((file) => file.startsWith('closed-'))).toBe(true);
    expect(files.some((file) => file.startsWith('open-'))).toBe(true);
  });

  test.each(files)('%s', async (file) => {
    await Worker.runReplayHistory({ workflowBundle: { codePath: testEnv('workflowBundle') } }, readHistory(file), path.basename(file, '.json'));
  });
});
