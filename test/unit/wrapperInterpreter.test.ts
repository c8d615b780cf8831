import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { wrapperInterpreter } from '../../activities/ansibleRunner';

describe('the wrapper runs on the Python that ansible-playbook names', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-interpreter-'));
  const script = (name: string, firstLine: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `${firstLine}\nimport sys\n`, { mode: 0o755 });
    return file;
  };
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each([
    ['#! /usr/bin/python3', '/usr/bin/python3'],
    ['#!/opt/venv/bin/python3.11', '/opt/venv/bin/python3.11'],
    ['#!/usr/bin/env python3', 'python3'],
    ['#!/usr/bin/env python3.12', 'python3.12'],
    ['#!/bin/sh', 'python3'],
    ['no interpreter line', 'python3'],
  ])('%s -> %s', async (firstLine, expected) => {
    expect(await wrapperInterpreter(script(`playbook-${expected.replace(/\W/g, '')}-${firstLine.length}`, firstLine))).toBe(expected);
  });

  test('found on PATH by name, as spawn would find it', async () => {
    script('ansible-playbook', '#!/usr/bin/python3');
    const saved = process.env.PATH;
    process.env.PATH = `${dir}${path.delimiter}${saved}`;
    try {
      expect(await wrapperInterpreter('ansible-playbook')).toBe('/usr/bin/python3');
    } finally {
      process.env.PATH = saved;
    }
  });

  test('a program that is nowhere falls back to python3', async () => {
    expect(await wrapperInterpreter(path.join(dir, 'missing'))).toBe('python3');
    expect(await wrapperInterpreter('no-such-ansible-playbook-here')).toBe('python3');
  });
});
