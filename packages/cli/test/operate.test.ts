import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerSkipReason, statebox, stateboxStreaming, TerminalRun, testLabel } from './support.js';

/**
 * The operator verbs, driven through the built `statebox` binary as a person or a script would, on
 * the local provider and on Docker (`--provider docker`). `shell` runs on a pseudo-terminal.
 */

const required = (process.env.STATEBOX_REQUIRE ?? '').split(',').map((name) => name.trim());

type Backend = {
  name: 'local' | 'docker';
  skip: () => Promise<string | false>;
  /** Environment of every CLI run: a state directory of the test's own. */
  env: (stateDir: string) => NodeJS.ProcessEnv;
  /** Makes leftovers like those of a killed process, each of `bytes` bytes where it holds any. */
  leftovers: (stateDir: string) => Promise<{ names: string[]; paths: string[] }>;
};

const junk = (bytes: number) => Buffer.alloc(bytes, 7);

const backends: Backend[] = [
  {
    name: 'local',
    skip: async () => (process.platform === 'linux' ? false : 'the local provider needs Linux'),
    env: (stateDir) => ({ ...process.env, STATEBOX_PROVIDER: 'local', STATEBOX_HOME: stateDir }),
    leftovers: async (home) => {
      const layer = join(home, 'layers', 'abcdef012345');
      await mkdir(join(layer, 'workspace'), { recursive: true });
      await writeFile(join(layer, 'workspace', 'blob'), junk(200_000));
      const trash = join(home, 'sandboxes', '.deleted-sbx-00000000deadbeef-abc');
      await mkdir(trash, { recursive: true });
      await writeFile(join(trash, 'blob'), junk(100_000));
      const lock = join(home, 'locks', 'sbx-00000000deadbeef.lock');
      await writeFile(lock, '');
      return {
        names: ['abcdef012345', 'sandboxes/.deleted-sbx-00000000deadbeef-abc', 'sbx-00000000deadbeef.lock'],
        paths: [layer, trash, lock],
      };
    },
  },
  {
    name: 'docker',
    skip: dockerSkipReason,
    env: (stateDir) => ({
      ...process.env,
      STATEBOX_PROVIDER: 'local', // --provider docker must win over this
      STATEBOX_DOCKER_STATE_DIR: stateDir,
      STATEBOX_DOCKER_IMAGE: 'statebox/debian:bookworm',
    }),
    leftovers: async (stateDir) => {
      const layer = join(stateDir, 'l', 'abcdef012345');
      await mkdir(layer, { recursive: true });
      await writeFile(join(layer, 'blob'), junk(200_000));
      // A create makes its layer before the volume that names it: only old orphans are taken.
      const hourAgo = new Date(Date.now() - 3_600_000);
      await utimes(layer, hourAgo, hourAgo);
      const lock = join(stateDir, 'locks', 'sb-00000000deadbeef.lock');
      await mkdir(join(stateDir, 'locks'), { recursive: true });
      await writeFile(lock, '');
      return { names: ['abcdef012345', 'locks/sb-00000000deadbeef.lock'], paths: [layer, lock] };
    },
  },
];

for (const backend of backends) {
  describe(`statebox CLI operator verbs on ${backend.name}`, async () => {
    const reason = await backend.skip();
    if (reason && required.includes(backend.name)) {
      it(`runs, because STATEBOX_REQUIRE names '${backend.name}'`, () => {
        expect.fail(
          `the CLI suite on ${backend.name} is required by STATEBOX_REQUIRE but would be skipped: ${reason}`,
        );
      });
      return;
    }
    if (reason) {
      it.skipIf(true)(`skipped: ${reason}`, () => {});
      return;
    }
    const label = testLabel();
    let stateDir = '';
    let env: NodeJS.ProcessEnv = {};
    const provider = backend.name === 'docker' ? ['--provider', 'docker'] : [];
    const run = (args: string[], stdin?: string | Buffer) => {
      const [verb, ...rest] = args;
      return statebox([verb!, ...provider, ...rest], env, stdin);
    };
    const create = async () => {
      const result = await run(['create', '-q', '--label', `test=${label}`]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      return result.stdout.trim();
    };

    beforeAll(async () => {
      stateDir = await mkdtemp(join(tmpdir(), `statebox-cli-${backend.name}-`));
      env = { ...backend.env(stateDir), ANTHROPIC_API_KEY: '' };
    });

    afterAll(async () => {
      if (!stateDir) return;
      const listed = await run(['ls', '--json', '--label', `test=${label}`]);
      const ids = (JSON.parse(listed.stdout || '[]') as { id: string }[]).map((info) => info.id);
      if (ids.length > 0) await run(['destroy', ...ids]);
      await rm(stateDir, { recursive: true, force: true });
    });

    it('ls shows a table for people and JSON for scripts, filtered by label', async () => {
      const id = await create();
      const table = await run(['ls', '--label', `test=${label}`]);
      expect(table.code).toBe(0);
      const [header, ...rows] = table.stdout.trim().split('\n');
      expect(header).toMatch(/^SANDBOX ID\s+STATUS\s+AGE\s+DISK\s+PARENT\s+LABELS$/);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatch(
        new RegExp(`^${id}\\s+running\\s+\\d+ seconds?\\s+[\\d.]+ (B|kB|MB).*\\s+-\\s+test=${label}$`),
      );
      const json = JSON.parse((await run(['ls', '--json', '--label', `test=${label}`])).stdout);
      expect(json).toMatchObject([
        { id, status: 'running', labels: { test: label }, provider: backend.name },
      ]);
      expect(json[0].disk.ownBytes).toBeGreaterThan(0);
      const none = await run(['ls', '--json', '--label', `test=${label}-other`]);
      expect(JSON.parse(none.stdout)).toEqual([]);
      const bad = await run(['ls', '--label', 'novalue']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(
        /^statebox: --label 'novalue' is not key=value: write --label session=sesn_123\.\n$/,
      );
    });

    it.runIf(backend.name === 'local')(
      '--provider takes its options from statebox.config.* when the file configures that provider',
      async () => {
        const configured = join(stateDir, 'configured-home');
        const file = join(stateDir, 'statebox.config.json');
        await writeFile(file, JSON.stringify({ provider: 'local', home: configured }));
        const withConfig = { ...env, STATEBOX_CONFIG: file };
        const made = await statebox(
          ['create', '-q', '--provider', 'local', '--label', `test=${label}-cfg`],
          withConfig,
        );
        expect(made.stderr).toBe('');
        const id = made.stdout.trim();
        // The sandbox lives under the configured home, not the environment's STATEBOX_HOME.
        const listed = await statebox(
          ['ls', '--json', '--provider', 'local', '--label', `test=${label}-cfg`],
          withConfig,
        );
        expect(JSON.parse(listed.stdout).map((info: { id: string }) => info.id)).toEqual([id]);
        expect(JSON.parse((await run(['ls', '--json', '--label', `test=${label}-cfg`])).stdout)).toEqual([]);
        expect((await stat(join(configured, 'sandboxes', id))).isDirectory()).toBe(true);
        expect((await statebox(['destroy', '--provider', 'local', id], withConfig)).code).toBe(0);
      },
    );

    it('exec passes stdin in, the exit code out, and streams output while the command runs', async () => {
      const id = await create();
      const result = await run(
        ['exec', id, '--', 'sh', '-c', 'tr a-z A-Z; echo oops >&2; exit 7'],
        'piped input\n',
      );
      expect(result).toMatchObject({ code: 7, stdout: 'PIPED INPUT\n', stderr: 'oops\n' });
      const binary = await run(['exec', id, '--', 'sh', '-c', 'printf "\\377\\000\\001"']);
      expect([...binary.stdoutBytes]).toEqual([0xff, 0, 1]);
      const where = await run([
        'exec',
        '-w',
        '/tmp',
        '-e',
        'GREETING=hi there',
        id,
        '--',
        'sh',
        '-c',
        'echo "$PWD $GREETING"',
      ]);
      expect(where.stdout).toBe('/tmp hi there\n');
      const streamed = await stateboxStreaming(
        ['exec', ...provider, id, '--', 'sh', '-c', 'echo first; sleep 4; echo second'],
        env,
      );
      expect(streamed.code).toBe(0);
      expect(streamed.chunks.map((chunk) => chunk.text).join('')).toBe('first\nsecond\n');
      // The first line reached the terminal before the command (and so the CLI) had finished.
      expect(streamed.chunks[0]).toEqual({ text: 'first\n', beforeExit: true });
    });

    it('exec fails in one line with the fix: unknown sandbox, suspended sandbox, no command', async () => {
      const missing = await run([
        'exec',
        backend.name === 'docker' ? 'sb-0000000000000000' : 'sbx-0000000000000000',
        '--',
        'true',
      ]);
      expect(missing.code).toBe(125);
      expect(missing.stderr.split('\n')).toHaveLength(2);
      expect(missing.stderr).toMatch(/^statebox: SandboxNotFoundError: .*not found.*statebox ls/);
      const usage = await run(['exec', 'some-id']);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(/^statebox: exec needs a sandbox id and a command: statebox exec/);
      const id = await create();
      expect((await run(['suspend', id])).code).toBe(0);
      const suspended = await run(['exec', id, '--', 'true']);
      expect(suspended.code).toBe(125);
      expect(suspended.stderr).toMatch(/^statebox: InvalidStateError: .*suspended.*resume/i);
    });

    it('cp copies files and directories both ways, keeping modes and symlinks', async () => {
      const id = await create();
      const host = await mkdtemp(join(tmpdir(), 'statebox-cp-'));
      try {
        await mkdir(join(host, 'project', 'src', 'deep'), { recursive: true });
        await writeFile(join(host, 'project', 'src', 'deep', 'run.sh'), '#!/bin/sh\necho ran\n', {
          mode: 0o750,
        });
        await writeFile(join(host, 'project', 'README'), 'read me\n');
        await symlink('README', join(host, 'project', 'link'));
        await writeFile(join(host, 'single.txt'), 'one file\n');

        const into = await run(['cp', join(host, 'project'), `${id}:/workspace/`]);
        expect(into.code).toBe(0);
        expect(into.stderr).toMatch(new RegExp(`^Copied .* to ${id}:/workspace/project in `));
        const inside = await run([
          'exec',
          id,
          '--',
          'sh',
          '-c',
          'project/src/deep/run.sh; cat project/link; stat -c %a project/src/deep/run.sh; readlink project/link',
        ]);
        expect(inside.stdout).toBe('ran\nread me\n750\nREADME\n');
        // A relative sandbox path is under the workdir; a missing destination is created.
        expect((await run(['cp', join(host, 'single.txt'), `${id}:notes/one.txt`])).code).toBe(0);
        expect((await run(['exec', id, '--', 'cat', '/workspace/notes/one.txt'])).stdout).toBe('one file\n');

        const back = await run(['cp', `${id}:/workspace/project`, join(host, 'back')]);
        expect(back.code).toBe(0);
        expect(await readFile(join(host, 'back', 'src', 'deep', 'run.sh'), 'utf8')).toBe(
          '#!/bin/sh\necho ran\n',
        );
        expect((await stat(join(host, 'back', 'src', 'deep', 'run.sh'))).mode & 0o777).toBe(0o750);
        expect(await readlink(join(host, 'back', 'link'))).toBe('README');
        // A symlink out of the copy (absolute here) is left out and named; the rest is copied.
        expect(
          (await run(['exec', id, '--', 'ln', '-s', '/etc/hostname', '/workspace/project/src/abs'])).code,
        ).toBe(0);
        const linked = await run(['cp', `${id}:/workspace/project`, join(host, 'linked')]);
        expect(linked.code).toBe(1);
        expect(linked.stderr).toMatch(
          /skipped 1 entry .*src\/abs: a symlink to \/etc\/hostname, outside the copy/,
        );
        await expect(lstat(join(host, 'linked', 'src', 'abs'))).rejects.toThrow();
        expect(await readFile(join(host, 'linked', 'README'), 'utf8')).toBe('read me\n');
        // Into an existing host directory, the source keeps its name.
        expect((await run(['cp', `${id}:notes/one.txt`, host])).code).toBe(0);
        expect(await readFile(join(host, 'one.txt'), 'utf8')).toBe('one file\n');

        const missing = await run(['cp', `${id}:/workspace/nothing-here`, host]);
        expect(missing.code).toBe(1);
        expect(missing.stderr).toMatch(
          /^statebox: FileNotFoundError: No such file in sandbox .*nothing-here/,
        );
        const twoHosts = await run(['cp', host, join(host, 'x')]);
        expect(twoHosts.code).toBe(2);
      } finally {
        await rm(host, { recursive: true, force: true });
      }
    });

    const hostile = backend.name === 'docker' ? it : it.skip;
    hostile(
      backend.name === 'docker'
        ? 'cp from a sandbox never writes outside the destination, even with a tar that forges its archive'
        : "cp from a sandbox with a forged archive: skipped on local, whose tar is the host's (read-only /usr)",
      async () => {
        const id = await create();
        const host = await mkdtemp(join(tmpdir(), 'statebox-cp-'));
        try {
          const outside = join(host, 'outside');
          await mkdir(outside);
          // A symlink `escape -> ../outside` followed by a member `escape/f`: extracted naively, f lands
          // in a host directory next to the destination. The sandbox's root replaces its own tar.
          const forge = [
            'mkdir -p /x/a /x/b/escape /x/src && ln -s ../outside /x/a/escape && echo pwned > /x/b/escape/f',
            'tar -cf /x/evil.tar -C /x/a escape -C /x/b escape/f',
            'mv /usr/bin/tar /usr/bin/tar.real && printf "#!/bin/sh\\ncat /x/evil.tar\\n" > /usr/bin/tar && chmod +x /usr/bin/tar',
          ].join(' && ');
          expect((await run(['exec', id, '--', 'sh', '-c', forge])).code).toBe(0);
          const copy = await run(['cp', `${id}:/x/src`, join(host, 'copy')]);
          expect(copy.code).toBe(1);
          expect(copy.stderr).toMatch(
            /^statebox: ProviderError: Copied .* but skipped 1 entry that would have been written outside it/,
          );
          await expect(stat(join(outside, 'f'))).rejects.toThrow();
        } finally {
          await rm(host, { recursive: true, force: true });
        }
      },
    );

    it('fork, inspect (fork tree, capabilities), suspend, resume and destroy, with timings', async () => {
      const id = await create();
      expect(await run(['exec', id, '--', 'sh', '-c', 'echo state > kept.txt'])).toMatchObject({ code: 0 });
      const forked = await run(['fork', id, '--count', '2', '--label', `test=${label}`, '--json']);
      expect(forked.code).toBe(0);
      const outcomes = JSON.parse(forked.stdout) as { childId: string; ok: boolean; ms: number }[];
      expect(outcomes).toHaveLength(2);
      expect(outcomes.every((outcome) => outcome.ok && outcome.ms > 0)).toBe(true);
      const [first, second] = outcomes.map((outcome) => outcome.childId);
      const grandchild = (await run(['fork', '-q', first!, '--label', `test=${label}`])).stdout.trim();
      // The whole result, so that a failure shows its stderr.
      expect(await run(['exec', grandchild, '--', 'cat', 'kept.txt'])).toMatchObject({
        code: 0,
        stdout: 'state\n',
      });

      const [report] = JSON.parse((await run(['inspect', first!, '--json'])).stdout);
      expect(report).toMatchObject({
        id: first,
        parentId: id,
        ancestors: [{ id, status: 'running' }],
        children: [{ id: grandchild, children: [] }],
        capabilities: { fork: 'filesystem' },
      });
      const human = await run(['inspect', id]);
      expect(human.stdout).toContain(`Sandbox:      ${id}`);
      expect(human.stdout).toMatch(
        new RegExp(
          `Fork tree:\\n  ${id} \\(running\\) <- this sandbox\\n  ├─ ${first} \\(running\\)\\n  │  └─ ${grandchild} \\(running\\)\\n  └─ ${second} \\(running\\)`,
        ),
      );
      expect(human.stdout).toMatch(/Capabilities:\n {2}suspend: {8}filesystem/);

      const suspended = await run(['suspend', id, first!]);
      expect(suspended.code).toBe(0);
      expect(suspended.stdout).toMatch(
        new RegExp(`^suspended ${id} in \\d+(\\.\\d)? m?s\\nsuspended ${first} in `),
      );
      const statuses = JSON.parse((await run(['ls', '--json', '--label', `test=${label}`])).stdout) as {
        id: string;
        status: string;
      }[];
      expect(statuses.find((info) => info.id === id)?.status).toBe('suspended');
      expect((await run(['resume', id])).stdout).toMatch(new RegExp(`^resumed ${id} in `));
      expect(await run(['exec', id, '--', 'cat', 'kept.txt'])).toMatchObject({ code: 0, stdout: 'state\n' });

      const destroyed = await run(['destroy', grandchild, second!, 'sbx-00000000nothere']);
      expect(destroyed.code).toBe(1);
      expect(destroyed.stdout).toMatch(
        new RegExp(`^destroyed ${grandchild} in .*\\ndestroyed ${second} in `),
      );
      expect(destroyed.stderr).toMatch(
        /^statebox: SandboxNotFoundError: Sandbox sbx-00000000nothere not found/,
      );
      const left = JSON.parse((await run(['ls', '--json', '--label', `test=${label}`])).stdout) as {
        id: string;
      }[];
      expect(left.map((info) => info.id)).not.toContain(grandchild);
    });

    it('shell gives an interactive shell on a pseudo-terminal, resizes with it and passes its exit code', async () => {
      const id = await create();
      const terminal = new TerminalRun(['shell', ...provider, id], env, { columns: 100, rows: 30 });
      try {
        let at = await terminal.waitFor(/[#$] $/m);
        terminal.type('echo $((6 * 7)); stty size\r');
        at = await terminal.waitFor(/42\r*\n30 100\r*\n/, at);
        terminal.resize(120, 40);
        await new Promise((resolve) => setTimeout(resolve, 500));
        terminal.type('stty size\r');
        at = await terminal.waitFor(/40 120\r*\n/, at);
        // Ctrl-C goes to the sandbox's foreground job, not to the CLI.
        terminal.type('sleep 60\r');
        await new Promise((resolve) => setTimeout(resolve, 1000));
        terminal.type('\x03');
        at = await terminal.waitFor(/[#$] $/m, at);
        terminal.type('echo still here\r');
        at = await terminal.waitFor(/still here\r*\n/, at);
        terminal.type('exit 3\r');
        expect(await terminal.exited).toBe(3);
      } finally {
        terminal.kill();
      }
      expect((await run(['suspend', id])).code).toBe(0);
      const suspended = new TerminalRun(['shell', ...provider, id], env);
      expect(await suspended.exited).toBe(1);
      expect(suspended.output).toMatch(/statebox: InvalidStateError: .*suspended.*resume/i);
      const noTerminal = await run(['shell', id]);
      expect(noTerminal.code).toBe(1);
      expect(noTerminal.stderr).toBe(
        `statebox: statebox shell needs a terminal (stdin and stdout are not one). For scripts use: statebox exec ${id} -- COMMAND\n`,
      );
    });

    it('prune --dry-run says what crashed processes left; prune removes it and says how much it freed', async () => {
      const id = await create();
      const { names, paths } = await backend.leftovers(stateDir);
      const dry = await run(['prune', '--dry-run', '--json']);
      expect(dry.code).toBe(0);
      const planned = JSON.parse(dry.stdout) as {
        dryRun: boolean;
        items: { name: string; bytes: number; removed: boolean }[];
        freedBytes: number;
      };
      expect(planned.dryRun).toBe(true);
      expect(planned.items.map((item) => item.name).sort()).toEqual([...names].sort());
      expect(planned.freedBytes).toBeGreaterThanOrEqual(200_000);
      for (const path of paths) await stat(path);

      const human = await run(['prune']);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/^KIND\s+NAME\s+SIZE\s+ACTION\s+REASON\n/);
      expect(human.stdout).toMatch(/layer\s+abcdef012345\s+\d+ kB\s+removed\s+no (sandbox|volume) uses it/);
      expect(human.stdout).toMatch(/Total reclaimed space: \d+ kB\n$/);
      for (const path of paths) await expect(stat(path)).rejects.toThrow();
      // Sandboxes in use are untouched.
      expect((await run(['exec', id, '--', 'true'])).code).toBe(0);
      expect((await run(['prune'])).stdout).toBe('Nothing to prune.\n');
    });
  });
}
