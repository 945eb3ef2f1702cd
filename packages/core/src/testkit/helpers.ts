import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { Sandbox } from '../sandbox.js';

/** Every byte value once, in order: the smallest input that catches text decoding and NUL handling. */
export function allByteValues(): Uint8Array {
  return Uint8Array.from({ length: 256 }, (_, index) => index);
}

export function randomData(length: number): Uint8Array {
  return new Uint8Array(randomBytes(length));
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function text(data: string): Uint8Array {
  return new TextEncoder().encode(data);
}

export function randomSuffix(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * Quotes a string for `/bin/sh` so that it reaches the command as one literal word: the same escaping as
 * `@statebox/adapter-kit`'s `shellQuote` (which core cannot import: the kit depends on core).
 */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

type ErrorClass<T> = { readonly name: string; isInstance(error: unknown): error is T };

/**
 * Awaits `action` and returns the error it fails with, asserting its class with `isInstance` (not
 * `instanceof`: an adapter may bundle its own copy of core). The failure message shows what came instead.
 */
export async function expectError<T>(
  action: () => Promise<unknown>,
  errorClass: ErrorClass<T>,
  what: string,
): Promise<T> {
  let result: unknown;
  try {
    result = await action();
  } catch (error) {
    if (errorClass.isInstance(error)) return error;
    return expect.fail(`${what}: expected ${errorClass.name}, got ${describeError(error)}`);
  }
  return expect.fail(`${what}: expected ${errorClass.name}, but it succeeded with ${preview(result)}`);
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return preview(error);
}

function preview(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  try {
    const json = JSON.stringify(value);
    return json === undefined ? String(value) : json.length > 300 ? `${json.slice(0, 300)}...` : json;
  } catch {
    return String(value);
  }
}

/** Runs a shell command that must succeed and returns its stdout; a failure shows the command and its stderr. */
export async function run(box: Sandbox, command: string): Promise<string> {
  const result = await box.exec(command, { timeoutMs: 60_000 });
  if (result.exitCode !== 0) {
    expect.fail(
      `command exited ${result.exitCode} in sandbox ${box.id}: ${command}\n` +
        `stdout: ${result.stdout.slice(0, 2000)}\nstderr: ${result.stderr.slice(0, 2000)}`,
    );
  }
  return result.stdout;
}

/** `sha256sum` inside the sandbox, so a check does not depend on the provider's own readFile. */
export async function sha256Inside(box: Sandbox, path: string): Promise<string> {
  const stdout = await run(box, `sha256sum ${shellQuote(path)}`);
  return stdout.split(' ')[0]!;
}

/**
 * A shell snippet that starts a background heartbeat: an `sh` appending to `beatFile` five times a
 * second, its pid in `pidFile`. Its output is detached so the exec that starts it can return.
 */
export function startHeartbeat(pidFile: string, beatFile: string): string {
  // A separate `sh` named by its $0, so that `liveness` can tell it from a process that reused its pid.
  return (
    `sh -c 'while :; do echo tick >> ${beatFile}; sleep 0.2; done' ${HEARTBEAT_NAME} < /dev/null > /dev/null 2>&1 & ` +
    `echo $! > ${pidFile}`
  );
}

const HEARTBEAT_NAME = 'statebox-heartbeat';

export type Liveness = {
  /** Whether `/proc/<pid>` shows the process, not counting a zombie (it is dead, only unreaped). */
  process: 'alive' | 'gone';
  /** Whether the heartbeat file grew during a one-second wait, i.e. the process still runs code. */
  beating: boolean;
};

/**
 * Asks the sandbox whether the heartbeat started by `startHeartbeat` still runs. Two signals, because
 * either alone can be fooled: a pid namespace per exec would hide a live process from `/proc`, and a
 * frozen process would be present but not beating.
 */
export async function liveness(box: Sandbox, pidFile: string, beatFile: string): Promise<Liveness> {
  const script = [
    // Without /proc every process would look gone, and a test of "killed" could not fail.
    `[ -e /proc/$$ ] || { echo "no /proc in the sandbox, cannot see processes" >&2; exit 90; }`,
    `pid=$(cat ${pidFile})`,
    'state=gone',
    'line=$(cat /proc/$pid/stat 2>/dev/null)',
    'case "$line" in "" | *") Z "* | *") X "*) ;; *) state=alive ;; esac',
    // A sandbox restarted in a new pid namespace hands out the same small pids again: make sure the pid
    // still belongs to the heartbeat, not to a process of this very script.
    // The name is assembled so that this script's own command line does not contain it.
    `name=${HEARTBEAT_NAME.slice(0, 10)}; name="\${name}${HEARTBEAT_NAME.slice(10)}"`,
    `case "$(tr '\\0' ' ' < /proc/$pid/cmdline 2>/dev/null)" in *"$name"*) ;; *) state=gone ;; esac`,
    `before=$(cat ${beatFile} 2>/dev/null | wc -c)`,
    'sleep 1',
    `after=$(cat ${beatFile} 2>/dev/null | wc -c)`,
    'echo "$state $before $after"',
  ].join('\n');
  const [state, before, after] = (await run(box, script)).trim().split(' ');
  return { process: state === 'alive' ? 'alive' : 'gone', beating: Number(after) > Number(before) };
}

/** Polls until `path` exists in the sandbox (read through the provider), for at most `limitMs`. */
export async function waitForFile(box: Sandbox, path: string, limitMs = 60_000): Promise<Uint8Array> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    try {
      const data = await box.readFile(path);
      if (data.byteLength > 0) return data;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline)
      return expect.fail(`${path} did not appear in sandbox ${box.id} within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Settles as `pending` does, or rejects with an error naming `what` once `limitMs` have passed: an
 * operation that hangs then fails its case at once, instead of holding the suite until the test timeout.
 * A late outcome of `pending` is swallowed (the case's sandbox is destroyed after it anyway).
 */
export function within<T>(pending: Promise<T>, limitMs: number, what: string): Promise<T> {
  pending.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not settle within ${limitMs} ms (it hangs)`)),
      limitMs,
    );
  });
  return Promise.race([pending, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Awaits `pending`, which must reject because `reason` was signalled: with `reason` itself or with an
 * `AbortError`. Returns what it rejected with; a result or another error fails the case.
 */
export async function expectAborted(
  pending: Promise<unknown>,
  reason: unknown,
  what: string,
): Promise<unknown> {
  const rejection = await pending.then(
    (result) => expect.fail(`${what}: resolved with ${preview(result)} although its signal was aborted`),
    (error: unknown) => error,
  );
  const aborted = rejection === reason || (rejection as Error | undefined)?.name === 'AbortError';
  expect(
    aborted,
    `${what}: expected the abort reason or an AbortError, got ${describeError(rejection)}`,
  ).toBe(true);
  return rejection;
}
