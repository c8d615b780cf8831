import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';

export interface HostCapacity {
  cpuCores: number;
  loadPct: number;
  memoryTotalMb: number;
  memoryFreeMb: number;
  gpuVramTotalMb: number | null;
  gpuVramFreeMb: number | null;
}

const MB = 1024 * 1024;

/** This host's capacity: 1-minute load over its cores, available memory, and GPU VRAM where nvidia-smi exists. */
export async function probeHost(): Promise<HostCapacity> {
  const cpuCores = os.availableParallelism();
  const gpu = await nvidiaSmiMemory();
  return {
    cpuCores,
    loadPct: Math.round(((os.loadavg()[0] ?? 0) / cpuCores) * 1000) / 10,
    memoryTotalMb: Math.round(os.totalmem() / MB),
    memoryFreeMb: await availableMemoryMb(),
    gpuVramTotalMb: gpu?.totalMb ?? null,
    gpuVramFreeMb: gpu?.freeMb ?? null,
  };
}

/**
 * GPU memory each process holds, in MiB, by pid, or null where there is no NVIDIA GPU; used to
 * attribute VRAM to one playbook's process tree rather than to the whole host.
 */
export async function gpuMemoryByPid(): Promise<Map<number, number> | null> {
  const stdout = await nvidiaSmi(['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits']);
  return stdout === null ? null : parseComputeApps(stdout);
}

/**
 * nvidia-smi's output, or null when it fails. A host without it is asked once: every spawn forks
 * the worker (hundreds of MiB), and the runner and the capacity report would ask every second.
 */
let nvidiaSmiMissing = false;

function nvidiaSmi(args: string[]): Promise<string | null> {
  if (nvidiaSmiMissing) return Promise.resolve(null);
  return new Promise((resolve) => {
    execFile('nvidia-smi', args, { timeout: 5000 }, (err, stdout) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') nvidiaSmiMissing = true;
      resolve(err ? null : stdout);
    });
  });
}

/** `nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits`: "413, 2566" lines. */
export function parseComputeApps(text: string): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const line of text.split('\n')) {
    const [pid, mib] = line.split(',').map((v) => Number(v.trim()));
    if (Number.isInteger(pid) && Number.isFinite(mib)) byPid.set(pid!, (byPid.get(pid!) ?? 0) + mib!);
  }
  return byPid;
}

/** MemAvailable counts reclaimable cache, which free memory alone would hide. */
async function availableMemoryMb(): Promise<number> {
  try {
    const meminfo = await fs.readFile('/proc/meminfo', 'utf8');
    const kb = Number(/^MemAvailable:\s+(\d+) kB$/m.exec(meminfo)?.[1]);
    if (Number.isFinite(kb)) return Math.round(kb / 1024);
  } catch {
    // not Linux: fall through
  }
  return Math.round(os.freemem() / MB);
}

async function nvidiaSmiMemory(): Promise<{ totalMb: number; freeMb: number } | null> {
  const stdout = await nvidiaSmi(['--query-gpu=memory.total,memory.free', '--format=csv,noheader,nounits']);
  if (stdout === null) return null;
  const gpus = stdout
    .trim()
    .split('\n')
    .map((line) => line.split(',').map((v) => Number(v.trim())))
    .filter((v) => v.length === 2 && v.every(Number.isFinite));
  if (gpus.length === 0) return null;
  return {
    totalMb: gpus.reduce((sum, [total]) => sum + (total ?? 0), 0),
    freeMb: gpus.reduce((sum, [, free]) => sum + (free ?? 0), 0),
  };
}
