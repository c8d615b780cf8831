import fs from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowBundlePath } from '../worker';

/** Bundles workflows/ once at build time; the worker loads the file instead of running webpack. */
async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    // webpack's module-by-module report says nothing a reader of `npm run build` needs.
    logger: { trace() {}, debug() {}, info() {}, log() {}, warn: console.warn, error: console.error },
  });
  fs.writeFileSync(workflowBundlePath, code);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
