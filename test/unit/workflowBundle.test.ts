import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildWorkflowBundle, chooseWorkflowCode, workflowBundleFiles, type WorkflowBundleFiles } from '../../src/temporal/workflowBundle';
import { projectRoot } from '../../src/paths';

/**
 * A project of its own in a scratch folder: workflows/ imports a sibling folder at run time, as
 * ours imports contracts/, so the record has to follow imports rather than one folder.
 */
function scratchProject(): WorkflowBundleFiles {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-bundle-'));
  // The bundle needs @temporalio/workflow, found from the scratch files like from ours.
  fs.symlinkSync(path.join(projectRoot, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  write(root, 'workflows/index.ts', "export { greet } from './greet';\n");
  write(root, 'workflows/greet.ts', "import { GREETING } from '../shared/words';\nexport async function greet(): Promise<string> {\n  return GREETING;\n}\n");
  write(root, 'shared/words.ts', "export const GREETING = 'hello';\n");
  return workflowBundleFiles(root);
}

function write(root: string, file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  fs.writeFileSync(path.join(root, file), text);
}

describe('the prebuilt workflow bundle', () => {
  let files: WorkflowBundleFiles;

  beforeAll(async () => {
    files = scratchProject();
    await buildWorkflowBundle(files);
  }, 60_000);

  afterAll(() => fs.rmSync(files.root, { recursive: true, force: true }));

  it('records our bundled sources, not the dependencies or the generated entrypoint', () => {
    const recorded = JSON.parse(fs.readFileSync(files.sources, 'utf8'));
    expect(Object.keys(recorded)).toEqual(['shared/words.ts', 'workflows/greet.ts', 'workflows/index.ts']);
    expect(fs.readFileSync(files.bundle, 'utf8')).toContain("'hello'");
  });

  it('is used while the sources are as it was built from', () => {
    expect(chooseWorkflowCode(files)).toEqual({ code: { workflowBundle: { codePath: files.bundle } } });
  });

  it('is not used once a source it holds changed, even one outside workflows/', () => {
    const words = path.join(files.root, 'shared/words.ts');
    const built = fs.readFileSync(words, 'utf8');
    fs.writeFileSync(words, "export const GREETING = 'hello again';\n");
    try {
      const choice = chooseWorkflowCode(files);
      expect(choice.code).toEqual({ workflowsPath: files.workflows });
      expect(choice.fromSourceBecause).toContain('shared/words.ts');
    } finally {
      fs.writeFileSync(words, built);
    }
  });

  it('is not used once a source it holds is gone while others remain', () => {
    const greet = path.join(files.root, 'workflows/greet.ts');
    const built = fs.readFileSync(greet, 'utf8');
    fs.rmSync(greet);
    try {
      expect(chooseWorkflowCode(files).fromSourceBecause).toContain('workflows/greet.ts');
    } finally {
      fs.writeFileSync(greet, built);
    }
  });

  it('is not used without its record of sources', () => {
    const record = fs.readFileSync(files.sources);
    fs.rmSync(files.sources);
    try {
      expect(chooseWorkflowCode(files).code).toEqual({ workflowsPath: files.workflows });
    } finally {
      fs.writeFileSync(files.sources, record);
    }
  });

  it('is all there is, and used, where no source ships with it (a production image)', () => {
    const shipped = workflowBundleFiles(fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-image-')));
    try {
      fs.mkdirSync(path.dirname(shipped.bundle));
      fs.copyFileSync(files.bundle, shipped.bundle);
      fs.copyFileSync(files.sources, shipped.sources);
      expect(chooseWorkflowCode(shipped)).toEqual({ code: { workflowBundle: { codePath: shipped.bundle } } });
    } finally {
      fs.rmSync(shipped.root, { recursive: true, force: true });
    }
  });
});
