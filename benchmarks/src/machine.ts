import { execFileSync } from 'node:child_process';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';

export type MachineInfo = {
  cpus: number;
  cpuModel: string;
  kernel: string;
  platform: string;
  node: string;
  memoryBytes: number;
  freeMemoryBytes: number;
  /** 1, 5 and 15 minute load averages: on a shared 2-core box they explain outliers. */
  loadAverageBefore: number[];
  loadAverageAfter?: number[];
  /** The statebox commit measured, and whether the tree had local changes. */
  commit: string | null;
  dirty: boolean | null;
};

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const status = git(['status', '--porcelain', '--', 'packages']);
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    platform: process.platform,
    node: process.version,
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    loadAverageBefore: loadavg().map((value) => Math.round(value * 100) / 100),
    commit: git(['rev-parse', 'HEAD']),
    dirty: status === null ? null : status.length > 0,
  };
}
