import { buildWorkflowBundle } from '../temporal/workflowBundle';

/** `npm run build`'s last step: the worker loads this bundle instead of running webpack at start. */
buildWorkflowBundle().catch((err) => {
  console.error(err);
  process.exit(1);
});
