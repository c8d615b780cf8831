import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, type BundleOptions } from '@temporalio/worker';
import { projectRoot } from '../paths';

/**
 * The prebuilt workflow bundle, and beside it the record of the sources it was built from: each of
 * our files webpack put into it (workflows/, contracts/, whatever they import at run time) with its
 * sha256. A worker runs the bundle only while those files are as recorded, so a bundle older than
 * the sources never wins. A production image ships dist/ without any of them: there the bundle is
 * all there is, and it runs.
 */
export type WorkflowBundleFiles = {
  /** What the recorded paths are relative to. */
  root: string;
  /** What is bundled: its index.ts and whatever that imports. */
  workflows: string;
  bundle: string;
  sources: string;
};

export function workflowBundleFiles(root: string = projectRoot): WorkflowBundleFiles {
  return {
    root,
    workflows: path.join(root, 'workflows'),
    bundle: path.join(root, 'dist', 'workflow-bundle.js'),
    sources: path.join(root, 'dist', 'workflow-bundle.sources.json'),
  };
}

/** Each source's path (relative to the root) and its sha256. */
type SourceRecord = Record<string, string>;

/** What every bundle of ours is built from: the prebuilt one, the tests' and the benches'. */
export function workflowBundlerOptions(root: string = projectRoot): Pick<BundleOptions, 'workflowsPath'> {
  return { workflowsPath: workflowBundleFiles(root).workflows };
}

export type WorkflowCode = { workflowBundle: { codePath: string } } | { workflowsPath: string };

// webpack's module-by-module report says nothing a reader of `npm run build` needs.
export const QUIET_BUNDLER = { trace() {}, debug() {}, info() {}, log() {}, warn: console.warn, error: console.error };

/** Bundles the workflows and records the sources that went into the bundle. */
export async function buildWorkflowBundle(files: WorkflowBundleFiles = workflowBundleFiles()): Promise<void> {
  const bundled: string[] = [];
  const { code } = await bundleWorkflowCode({
    workflowsPath: files.workflows,
    logger: QUIET_BUNDLER,
    webpackConfigHook: (config) => ({ ...config, plugins: [...(config.plugins ?? []), collectModules(bundled)] }),
  });
  // A build that stops between the two writes leaves a bundle without a record, which no worker trusts.
  fs.rmSync(files.sources, { force: true });
  fs.mkdirSync(path.dirname(files.bundle), { recursive: true });
  fs.writeFileSync(files.bundle, code);
  fs.writeFileSync(files.sources, `${JSON.stringify(recordOf(files.root, bundled), null, 2)}\n`);
}

/** The prebuilt bundle while it matches the sources present; else the sources, and why. */
export function chooseWorkflowCode(files: WorkflowBundleFiles = workflowBundleFiles()): {
  code: WorkflowCode;
  fromSourceBecause?: string;
} {
  const stale = whyNotPrebuilt(files);
  return stale === undefined
    ? { code: { workflowBundle: { codePath: files.bundle } } }
    : { code: { workflowsPath: files.workflows }, fromSourceBecause: stale };
}

function whyNotPrebuilt(files: WorkflowBundleFiles): string | undefined {
  if (!fs.existsSync(files.bundle)) return `there is no prebuilt bundle at ${files.bundle}`;
  if (!fs.existsSync(files.sources)) return `${files.bundle} has no record of the sources it was built from`;
  const recorded: SourceRecord = JSON.parse(fs.readFileSync(files.sources, 'utf8'));
  const present = Object.keys(recorded).filter((file) => fs.existsSync(path.join(files.root, file)));
  if (present.length === 0) return undefined;
  const differing = Object.keys(recorded).filter(
    (file) => !present.includes(file) || sha256Of(path.join(files.root, file)) !== recorded[file],
  );
  return differing.length === 0 ? undefined : `sources changed since ${files.bundle} was built: ${differing.join(', ')}`;
}

type WebpackPlugin = NonNullable<Parameters<NonNullable<BundleOptions['webpackConfigHook']>>[0]['plugins']>[number];

/** Fills `into` with the file of every module webpack bundled. */
function collectModules(into: string[]): WebpackPlugin {
  return {
    apply(compiler) {
      compiler.hooks.done.tap('opsledger-workflow-sources', (stats) => {
        for (const module of stats.compilation.modules) {
          const file = module.nameForCondition();
          if (file) into.push(file);
        }
      });
    },
  };
}

/** Our own files among the bundled ones: not a dependency's, and on disk. */
function recordOf(root: string, bundled: string[]): SourceRecord {
  const ours = [...new Set(bundled)]
    .map((file) => path.relative(root, file))
    .filter((file) => !file.startsWith('..') && !file.split(path.sep).includes('node_modules'))
    // The entrypoint Temporal generates lives only in webpack's in-memory file system.
    .filter((file) => fs.existsSync(path.join(root, file)))
    .sort();
  return Object.fromEntries(ours.map((file) => [file, sha256Of(path.join(root, file))]));
}

function sha256Of(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
