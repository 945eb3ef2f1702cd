import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localSuiteSkip, packageDir, unprivilegedSkipReason } from '../src/testing.js';

/**
 * The local provider's threat model (README, "Threat model"), one test per promise. Each run executes
 * test/fixtures/attacks.mjs, a battery of attempts to reach the host, another sandbox or statebox's
 * state, through the built package: as root (the usual server set-up) and as an unprivileged user
 * (rootless). Compiled attacks (file handles, modules, ptrace, LD_PRELOAD) need a C compiler.
 */

const run = promisify(execFile);
const fixtures = join(packageDir, 'test', 'fixtures');
const NOBODY = 65534;
const SANDBOX_UID = 1_999_990_000;

const work = mkdtempSync(join(tmpdir(), 'statebox-threats-'));
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const compiler = ['cc', 'gcc'].find((name) => spawnSync(name, ['--version']).status === 0);
const noCompiler = compiler ? undefined : 'no C compiler (cc) on this host to build the compiled attacks';

function compile(): { attack: string; preload: string } | undefined {
  if (!compiler) return undefined;
  const attack = join(work, 'attack');
  const preload = join(work, 'preload.so');
  for (const args of [
    ['-O', '-o', attack, join(fixtures, 'attack.c')],
    ['-O', '-shared', '-fPIC', '-o', preload, join(fixtures, 'preload.c')],
  ]) {
    const result = spawnSync(compiler, args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${compiler} ${args.join(' ')}: ${result.stderr}`);
  }
  chmodSync(attack, 0o755);
  chmodSync(preload, 0o755);
  return { attack, preload };
}

type Observations = {
  hostUids: number[];
  otherSandboxSeesIt: string;
  sysctlWrites: string;
  sysctlsUnchanged: boolean;
  sys: string;
  homeSeenInside: boolean;
  homeInErrors: string[];
  attack?: Record<string, string>;
  initAliveAfterAttack?: string;
  hostPreloadLog?: string | null;
  insidePreload?: string;
  cgroups: boolean;
  forkBomb: string | number;
  pidsPeak?: number;
  aliveAfterForkBomb: string;
  memory: { exitCode: number; stdout: string };
  aliveAfterMemory: string;
  shmKiB: number;
  daemonExec: string | number;
  daemonKilled: boolean;
};

async function battery(as: 'root' | 'nobody', binaries: ReturnType<typeof compile>): Promise<Observations> {
  const home = mkdtempSync(join(work, `${as}-home-`));
  const scratch = mkdtempSync(join(work, `${as}-scratch-`));
  // The scratch dir must be writable by whoever a leaked LD_PRELOAD would run as, or a leak would go unseen.
  chmodSync(home, 0o777);
  chmodSync(scratch, 0o777);
  const args = [
    join(fixtures, 'attacks.mjs'),
    home,
    scratch,
    binaries?.attack ?? '',
    binaries?.preload ?? '',
  ];
  const command =
    as === 'root'
      ? { file: process.execPath, args }
      : {
          file: 'setpriv',
          args: [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, ...args],
        };
  const { stdout } = await run(command.file, command.args, {
    cwd: packageDir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home },
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Observations;
}

for (const as of ['root', 'nobody'] as const) {
  const skip =
    localSuiteSkip() ??
    (as === 'root'
      ? process.getuid?.() === 0
        ? undefined
        : 'not running as root'
      : unprivilegedSkipReason());
  const rootless = as === 'nobody';

  describe.skipIf(Boolean(skip))(
    `local threat model, statebox running as ${as}${skip ? ` (skipped: ${skip})` : ''}`,
    () => {
      let seen: Observations;
      beforeAll(async () => {
        seen = await battery(as, compile());
      }, 180_000);

      it('sandbox commands are uid 0 inside but an unprivileged uid on the host, never host root', () => {
        expect(seen.hostUids.length).toBeGreaterThan(0);
        for (const uid of seen.hostUids) expect(uid).toBe(rootless ? NOBODY : SANDBOX_UID);
      });

      it('cannot write host-global kernel settings (/proc/sys, core_pattern, drop_caches); host values unchanged', () => {
        expect(seen.sysctlWrites).not.toContain('WROTE');
        expect(seen.sysctlWrites.match(/denied/g)?.length).toBe(5);
        expect(seen.sysctlsUnchanged).toBe(true);
      });

      it('has no /sys and cannot mount one', () => {
        expect(seen.sys).toContain('No such file or directory');
        expect(seen.sys).not.toContain('MOUNTED');
      });

      it('sees no host path of the state directory (mountinfo, mounts, command lines, environment), nor do errors show it', () => {
        expect(seen.homeSeenInside).toBe(false);
        expect(seen.homeInErrors).toEqual([]);
      });

      it('cannot see another sandbox’s processes', () => {
        expect(seen.otherSandboxSeesIt).toBe('');
      });

      it.skipIf(Boolean(noCompiler))(
        `holds no capability over the host: file handles, modules, mounts, ptrace, signals to init, reboot, device nodes${noCompiler ? ` (skipped: ${noCompiler})` : ''}`,
        () => {
          const attack = seen.attack!;
          // Every attempt fails with a permission error (ENOSYS for a kernel without module loading).
          for (const name of [
            'open_by_handle_at',
            'open_by_handle_at_usr',
            'mount_tmpfs',
            'mount_sysfs',
            'remount_usr_rw',
            'umount_proc_sys',
            'ptrace_init',
            'kill_init',
            'reboot',
            'sethostname',
            'mknod',
            'init_root',
            'drop_caches',
            'core_pattern',
          ]) {
            expect(attack[name], name).toMatch(/not permitted|Permission denied|Read-only file system/);
          }
          expect(attack.init_module).toMatch(/not permitted|not implemented/);
          expect(attack.sysrq).toMatch(/No such file|Permission denied|Read-only/);
          expect(seen.initAliveAfterAttack).toBe('alive\n');
        },
      );

      it.skipIf(Boolean(noCompiler))(
        `an LD_PRELOAD in exec's or create's env reaches the command only, never a helper outside the sandbox${noCompiler ? ` (skipped: ${noCompiler})` : ''}`,
        () => {
          // The library works: loaded inside, it logs every process of the command.
          expect(seen.insidePreload).toMatch(/pid=\d+ uid=0/);
          expect(seen.hostPreloadLog).toBeNull();
        },
      );

      it(
        'exec timeouts end what the command started, a setsid daemon included' +
          (rootless ? ' (rootless: the call settles; without cgroups a setsid daemon can outlive it)' : ''),
        () => {
          expect(seen.daemonExec).toBe('TimeoutError');
          if (!rootless) expect(seen.daemonKilled).toBe(true);
        },
      );

      it.skipIf(rootless)(
        'bounds processes (pids limit): a fork bomb stops at the limit and the sandbox stays usable',
        () => {
          expect(seen.cgroups).toBe(true);
          expect(seen.pidsPeak).toBeLessThanOrEqual(128);
          expect(seen.aliveAfterForkBomb).toBe('alive\n');
        },
      );

      it.skipIf(rootless)(
        'bounds memory: a command past the limit is killed, the sandbox stays usable',
        () => {
          expect(seen.memory.exitCode).not.toBe(0);
          expect(seen.memory.stdout).not.toBe('300000000');
          expect(seen.aliveAfterMemory).toBe('alive\n');
        },
      );

      it('bounds /dev/shm to its size', () => {
        expect(seen.shmKiB).toBeLessThanOrEqual(8 * 1024);
      });
    },
  );
}
