import { describe, expect } from 'vitest';
import { TimeoutError } from '../errors.js';
import { type SuiteContext, unless } from './context.js';
import {
  allByteValues,
  describeError,
  expectError,
  type Liveness,
  liveness,
  run,
  sha256,
  sha256Inside,
  startHeartbeat,
  waitForFile,
} from './helpers.js';

const TEN_MB = 10 * 1024 * 1024;

export function describeExec(suite: SuiteContext): void {
  const { capabilities } = suite;

  describe('exec', () => {
    const sandbox = suite.shared({
      env: { STATEBOX_CREATE_ONLY: 'from-create', STATEBOX_OVERRIDDEN: 'from-create' },
    });

    suite.test('returns exit codes as results: 0, 3, and 127 for a missing command', async () => {
      const box = sandbox();
      expect((await box.exec('exit 0')).exitCode).toBe(0);
      expect((await box.exec('exit 3')).exitCode).toBe(3);
      expect((await box.exec(['sh', '-c', 'exit 3'])).exitCode).toBe(3);
      const missing = await box.exec('statebox-no-such-command-4f1c');
      expect(missing.exitCode).toBe(127);
      expect(missing.stderr.length).toBeGreaterThan(0);
    });

    suite.test('keeps stderr separate from stdout', async () => {
      const result = await sandbox().exec('echo out; echo err >&2; echo out2; echo err2 >&2');
      expect(result.stdout).toBe('out\nout2\n');
      expect(result.stderr).toBe('err\nerr2\n');
      expect(result.truncated).toEqual({ stdout: false, stderr: false });
    });

    suite.test('passes argv literally, without a shell', async () => {
      const args = ['a b', "it's", '"q"', '$HOME', '*', ';', '`id`', 'x\ny', '', '\\n'];
      const result = await sandbox().exec(['printf', '%s|', ...args]);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toBe(`${args.join('|')}|`);
    });

    suite.test('runs a string through /bin/sh -c: pipes, expansion, && and redirection', async () => {
      const result = await sandbox().exec('echo $((2 + 3)) | tr 5 F; echo a && echo b; echo c > /dev/null');
      expect(result.stdout).toBe('F\na\nb\n');
    });

    suite.test('runs in the workdir by default, and in a cwd absolute or relative to it', async () => {
      const box = sandbox();
      await run(box, 'mkdir -p sub/dir');
      expect((await run(box, 'pwd')).trim()).toBe(box.workdir);
      expect((await box.exec('pwd', { cwd: 'sub/dir' })).stdout.trim()).toBe(`${box.workdir}/sub/dir`);
      expect((await box.exec('pwd', { cwd: `${box.workdir}/sub` })).stdout.trim()).toBe(`${box.workdir}/sub`);
      expect((await box.exec(['sh', '-c', 'pwd'], { cwd: '/tmp' })).stdout.trim()).toBe('/tmp');
    });

    suite.test('merges env over the create-time env, and the exec env wins', async () => {
      const result = await sandbox().exec(
        'echo "$STATEBOX_CREATE_ONLY|$STATEBOX_OVERRIDDEN|$STATEBOX_EXEC_ONLY"',
        {
          env: { STATEBOX_OVERRIDDEN: 'from-exec', STATEBOX_EXEC_ONLY: 'exec value' },
        },
      );
      expect(result.stdout).toBe('from-create|from-exec|exec value\n');
      // Exec env does not stick: the next exec sees the create-time value again.
      expect(await run(sandbox(), 'echo "$STATEBOX_OVERRIDDEN|$STATEBOX_EXEC_ONLY"')).toBe('from-create|\n');
      expect(await run(sandbox(), 'echo "$PATH"')).not.toBe('\n');
    });

    suite.test('writes stdin bytes and closes it; without stdin, stdin is empty', async () => {
      const box = sandbox();
      const bytes = allByteValues();
      const echoed = await box.exec('cat', { stdin: bytes });
      expect(sha256(echoed.stdoutBytes)).toBe(sha256(bytes));
      expect((await box.exec(['wc', '-c'], { stdin: 'héllo' })).stdout.trim()).toBe('6');
      // A provider that leaves stdin open makes `cat` wait forever; the timeout turns that into a failure.
      const empty = await box.exec('cat; echo "exit $?"', { timeoutMs: 30_000 });
      expect(empty.stdout).toBe('exit 0\n');
    });

    suite.test(
      'on timeout, kills the whole process tree and throws TimeoutError with the output so far',
      async () => {
        const box = sandbox();
        const command = `${startHeartbeat('timeout.pid', 'timeout.beat')}; echo started; sleep 300`;
        const error = await expectError(
          () => box.exec(command, { timeoutMs: 1500 }),
          TimeoutError,
          'exec past timeoutMs',
        );
        expect(TimeoutError.isInstance(error)).toBe(true);
        expect(error.timeoutMs).toBe(1500);
        expect(new TextDecoder().decode(error.stdout)).toContain('started');
        expectKilled(await liveness(box, 'timeout.pid', 'timeout.beat'), 'after a timeout');
      },
    );

    suite.test('on abort, rejects with the signal reason and kills the whole process tree', async () => {
      const box = sandbox();
      await run(box, 'rm -f abort.pid');
      const controller = new AbortController();
      const reason = new Error('statebox conformance abort');
      const command = `${startHeartbeat('abort.pid', 'abort.beat')}; echo started; sleep 300`;
      const pending = box.exec(command, { signal: controller.signal, timeoutMs: 100_000 });
      pending.catch(() => undefined);
      await waitForFile(box, 'abort.pid');
      controller.abort(reason);
      let rejection: unknown;
      await pending.then(
        (result) => expect.fail(`exec resolved after abort with exit code ${result.exitCode}`),
        (error) => {
          rejection = error;
        },
      );
      const isReasonOrAbortError =
        rejection === reason || (rejection as Error | undefined)?.name === 'AbortError';
      expect(isReasonOrAbortError, `rejected with ${describeError(rejection)}`).toBe(true);
      expectKilled(await liveness(box, 'abort.pid', 'abort.beat'), 'after an abort');
    });

    suite.test('rejects at once with an already aborted signal', async () => {
      const reason = new Error('aborted before exec');
      const pending = sandbox().exec('sleep 300', { signal: AbortSignal.abort(reason), timeoutMs: 100_000 });
      const error = await pending.then(
        () => expect.fail('exec resolved with an already aborted signal'),
        (rejection: unknown) => rejection,
      );
      expect(error === reason || (error as Error).name === 'AbortError', describeError(error)).toBe(true);
    });

    suite.test('returns 10 MB of output intact with the default cap', async () => {
      const box = sandbox();
      await run(box, `head -c ${TEN_MB} /dev/urandom > ten.bin`);
      const result = await box.exec('cat ten.bin');
      expect(result.exitCode).toBe(0);
      expect(result.truncated.stdout).toBe(false);
      expect(result.stdoutBytes.byteLength).toBe(TEN_MB);
      expect(sha256(result.stdoutBytes)).toBe(await sha256Inside(box, 'ten.bin'));
    });

    suite.test('truncates output over maxOutputBytes in the middle, with the [statebox: marker', async () => {
      const box = sandbox();
      const result = await box.exec(
        'printf HEAD; yes abcdefgh | head -c 100000; printf TAIL; echo small >&2',
        {
          maxOutputBytes: 1000,
        },
      );
      expect(result.truncated).toEqual({ stdout: true, stderr: false });
      expect(result.stdout).toContain('[statebox: ');
      expect(result.stdout.startsWith('HEAD')).toBe(true);
      expect(result.stdout.endsWith('TAIL')).toBe(true);
      expect(result.stdoutBytes.byteLength).toBeLessThan(1200);
      expect(result.stderr).toBe('small\n');

      const stderr = await box.exec('yes error | head -c 50000 >&2', { maxOutputBytes: 1000 });
      expect(stderr.truncated).toEqual({ stdout: false, stderr: true });
      expect(stderr.stderr).toContain('[statebox: ');

      const exact = await box.exec('yes abc | head -c 1000', { maxOutputBytes: 1000 });
      expect(exact.truncated.stdout).toBe(false);
      expect(exact.stdoutBytes.byteLength).toBe(1000);
    });

    suite.test('returns binary output byte-exact in stdoutBytes', async () => {
      const bytes = allByteValues();
      const format = [...bytes].map((byte) => `\\${byte.toString(8).padStart(3, '0')}`).join('');
      const result = await sandbox().exec(['printf', format]);
      expect(result.exitCode).toBe(0);
      expect([...result.stdoutBytes]).toEqual([...bytes]);
    });

    suite.test('calls onStdout and onStderr with output that adds up to the result', async () => {
      const stdout: string[] = [];
      const stderr: string[] = [];
      const result = await sandbox().exec('echo one; echo two >&2; echo three; printf ☃', {
        onStdout: (chunk) => stdout.push(chunk),
        onStderr: (chunk) => stderr.push(chunk),
      });
      expect(stdout.join('')).toBe(result.stdout);
      expect(stdout.join('')).toBe('one\nthree\n☃');
      expect(stderr.join('')).toBe('two\n');
    });

    suite.test(
      'streams: onStdout gets the first chunk while the command still runs',
      async () => {
        const box = sandbox();
        await run(box, 'rm -f stream.go');
        let sawFirstChunk = false;
        let wroteGo: Promise<void> | undefined;
        const chunks: string[] = [];
        // The command cannot finish until the test creates stream.go, which it does only on the first chunk:
        // a provider that buffers until exit deadlocks here and fails with the exec timeout.
        const result = await box.exec('echo first; while [ ! -e stream.go ]; do sleep 0.1; done; echo done', {
          timeoutMs: 60_000,
          onStdout: (chunk) => {
            chunks.push(chunk);
            if (!sawFirstChunk) {
              sawFirstChunk = true;
              wroteGo = box.writeFile('stream.go', 'go');
            }
          },
        });
        await wroteGo;
        expect(result.stdout).toBe('first\ndone\n');
        expect(chunks.join('')).toBe('first\ndone\n');
      },
      unless(capabilities.execStreaming, capabilities, 'execStreaming'),
    );
  });
}

function expectKilled(state: Liveness, when: string): void {
  expect(state.process, `the background child is still in /proc ${when}`).toBe('gone');
  expect(state.beating, `the background child still writes its heartbeat ${when}`).toBe(false);
}
