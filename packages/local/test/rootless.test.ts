import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { localSuiteSkip, packageDir, unprivilegedSkipReason } from '../src/testing.js';

const run = promisify(execFile);
const NOBODY = 65534;

const home = mkdtempSync(join(tmpdir(), 'statebox-rootless-'));
chmodSync(home, 0o777);
afterAll(() => rmSync(home, { recursive: true, force: true }));

// The scenario a laptop user runs, executed as `nobody` through the built package.
const scenario = `
import { createStatebox } from '@statebox/core';
import { local } from '@statebox/local';
const statebox = createStatebox({ provider: local({ home: process.argv[1] }) });
const box = await statebox.create();
const out = {};
out.id = (await box.exec('id -u')).stdout.trim();
await box.exec('mkdir -p d/sub && echo 1 > d/a && echo 2 > d/sub/b && echo gone > g');
await box.writeFile('mode.sh', 'echo hi', { mode: 0o755 });
const child = await box.fork();
out.replaceDir = (await child.exec('rm -rf d && mkdir d && echo new > d/c && rm g && ls d && ls')).stdout;
const grandchild = await child.fork();
out.grandchild = (await grandchild.exec('ls d; ls')).stdout;
out.source = (await box.exec('ls -R d; ls')).stdout;
out.remount = (await box.exec('mount -o remount,rw,bind /usr 2>/dev/null && echo remounted; touch /usr/x 2>/dev/null && echo wrote; echo done')).stdout;
await box.suspend();
await box.resume();
out.mode = (await box.exec('stat -c %a mode.sh')).stdout.trim();
for (const sandbox of [grandchild, child, box]) await sandbox.destroy();
console.log(JSON.stringify(out));
`;

describe('local, rootless', () => {
  const reason = localSuiteSkip() ?? unprivilegedSkipReason();
  it.skipIf(Boolean(reason))(
    `runs the lifecycle as an unprivileged user${reason ? ` (skipped: ${reason})` : ''}`,
    async () => {
      const { stdout } = await run(
        'setpriv',
        [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          '--clear-groups',
          process.execPath,
          '--input-type=module',
          '-e',
          scenario,
          home,
        ],
        { cwd: packageDir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home } },
      );
      const out = JSON.parse(stdout);
      expect(out.id).toBe('0');
      expect(out.replaceDir).toBe('c\nd\nmode.sh\n');
      expect(out.grandchild).toBe('c\nd\nmode.sh\n');
      expect(out.source).toBe('d:\na\nsub\n\nd/sub:\nb\nd\ng\nmode.sh\n');
      expect(out.remount).toBe('done\n');
      expect(out.mode).toBe('755');
    },
  );

  // The kill-at-any-point and concurrency suites again, as `nobody`: rootless mode has no cgroups, forks
  // always seal and freeze with SIGSTOP, and its helpers run unprivileged, so its crash repair differs.
  it.skipIf(Boolean(reason))(
    `passes the kill-at-any-point and concurrency suites as an unprivileged user${reason ? ` (skipped: ${reason})` : ''}`,
    { timeout: 900_000 },
    async () => {
      const repo = join(packageDir, '..', '..');
      const result = await run(
        'setpriv',
        [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          '--clear-groups',
          process.execPath,
          join(repo, 'node_modules', 'vitest', 'vitest.mjs'),
          'run',
          'packages/local/test/crash.test.ts',
          'packages/local/test/concurrency.test.ts',
          // `nobody` cannot write next to the config or into node_modules' cache.
          '--configLoader',
          'runner',
          '--cache=false',
        ],
        {
          cwd: repo,
          env: {
            PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
            HOME: home,
            STATEBOX_SOAK: process.env.STATEBOX_SOAK ?? '',
          },
          maxBuffer: 64 * 1024 * 1024,
        },
      ).catch((error: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`the rootless run failed:\n${error.stdout ?? ''}\n${error.stderr ?? error.message}`);
      });
      // The trial counts each suite prints, for the log.
      console.log(result.stdout.slice(-6000));
      expect(result.stdout).toMatch(/Test Files {2}2 passed/);
    },
  );
});
