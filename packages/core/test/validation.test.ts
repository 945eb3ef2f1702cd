import { describe, expect, it } from 'vitest';
import { ConfigError, FileTooLargeError, InvalidPathError } from '../src/errors.js';
import type {
  ExecOutput,
  ExecRequest,
  ReadFileOptions,
  SandboxProvider,
  WriteFileOptions,
} from '../src/provider.js';
import { DEFAULT_MAX_READ_BYTES, Sandbox } from '../src/sandbox.js';
import { createStatebox } from '../src/statebox.js';

type Call =
  | { operation: 'exec'; request: ExecRequest }
  | { operation: 'readFile'; path: string; options: ReadFileOptions }
  | { operation: 'writeFile'; path: string; options: WriteFileOptions | undefined }
  | { operation: 'create' | 'fork'; request: unknown };

const info = {
  id: 'sbx-test',
  provider: 'recording',
  status: 'running' as const,
  labels: {},
  createdAt: '2026-01-01T00:00:00.000Z',
  workdir: '/workspace',
};

/** A provider that records what reaches it: a refused call must never get here. */
function recordingProvider(): SandboxProvider & { calls: Call[] } {
  const calls: Call[] = [];
  const output: ExecOutput = {
    exitCode: 0,
    stdout: new Uint8Array(),
    stderr: new Uint8Array(),
    truncated: { stdout: false, stderr: false },
  };
  return {
    calls,
    specificationVersion: 'statebox-v1',
    name: 'recording',
    capabilities: {
      suspend: 'filesystem',
      fork: 'filesystem',
      forkSuspended: true,
      forkSource: 'kept',
      execStreaming: false,
      fileModes: true,
      symlinks: true,
      hardLinks: true,
    },
    create: async (request) => {
      calls.push({ operation: 'create', request });
      return info;
    },
    get: async () => info,
    list: async () => [],
    exec: async (_id, request) => {
      calls.push({ operation: 'exec', request });
      return output;
    },
    readFile: async (_id, path, options) => {
      calls.push({ operation: 'readFile', path, options });
      return new Uint8Array();
    },
    writeFile: async (_id, path, _data, options) => {
      calls.push({ operation: 'writeFile', path, options });
    },
    suspend: async () => info,
    resume: async () => info,
    fork: async (_id, request) => {
      calls.push({ operation: 'fork', request });
      return { ...info, id: 'sbx-child' };
    },
    destroy: async () => undefined,
  };
}

function setup() {
  const provider = recordingProvider();
  return { provider, box: new Sandbox(provider, info) };
}

/** Runs `action`, which must throw a ConfigError naming `option`, and returns it. */
async function refused(action: () => Promise<unknown>, option: string): Promise<ConfigError> {
  let error: unknown;
  try {
    await action();
  } catch (caught) {
    error = caught;
  }
  if (!ConfigError.isInstance(error))
    return expect.fail(`expected a ConfigError naming ${option}, got ${error}`);
  expect(error.option).toBe(option);
  expect(error.message).toContain(`'${option}'`);
  return error;
}

describe('exec validation', () => {
  it('refuses an env name containing "=", saying why, before reaching the provider', async () => {
    const { provider, box } = setup();
    const error = await refused(() => box.exec('true', { env: { 'A=B': 'x' } }), 'env.A=B');
    expect(error.message).toContain('"="');
    expect(error.message).not.toContain('invalid key in record');
    expect(provider.calls).toEqual([]);
  });

  it('refuses an empty env name, a NUL in an env name and a NUL in an env value', async () => {
    const { provider, box } = setup();
    expect((await refused(() => box.exec('true', { env: { '': 'x' } }), 'env.')).message).toContain('empty');
    expect((await refused(() => box.exec('true', { env: { 'A\0B': 'x' } }), 'env.A\0B')).message).toContain(
      'NUL',
    );
    expect((await refused(() => box.exec('true', { env: { A: 'x\0y' } }), 'env.A')).message).toContain('NUL');
    expect(provider.calls).toEqual([]);
  });

  it('accepts an env value containing "=" and passes env through', async () => {
    const { provider, box } = setup();
    await box.exec('true', { env: { A: 'x=y', EMPTY: '' } });
    expect(provider.calls[0]).toMatchObject({ operation: 'exec', request: { env: { A: 'x=y', EMPTY: '' } } });
  });

  it('refuses a NUL in an argv element, in a command string and in cwd, naming where', async () => {
    const { provider, box } = setup();
    expect((await refused(() => box.exec(['echo', 'a\0b']), 'command.1')).message).toContain('NUL');
    expect((await refused(() => box.exec('echo a\0b'), 'command')).message).toContain('NUL');
    expect((await refused(() => box.exec('pwd', { cwd: '/tmp/a\0b' }), 'cwd')).message).toContain('NUL');
    await refused(() => box.exec([]), 'command');
    await refused(() => box.exec(''), 'command');
    expect(provider.calls).toEqual([]);
  });

  it('refuses timeoutMs 2**31 (Node would fire it at once) and accepts 2**31 - 1', async () => {
    const { provider, box } = setup();
    const error = await refused(() => box.exec('true', { timeoutMs: 2 ** 31 }), 'timeoutMs');
    expect(error.message).toContain(String(2 ** 31 - 1));
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await refused(() => box.exec('true', { timeoutMs: bad }), 'timeoutMs');
    }
    expect(provider.calls).toEqual([]);
    await box.exec('true', { timeoutMs: 2 ** 31 - 1 });
    expect(provider.calls[0]).toMatchObject({ request: { timeoutMs: 2 ** 31 - 1 } });
  });
});

describe('create and fork validation', () => {
  it('create refuses an env name with "=" or NUL and a label with NUL, before reaching the provider', async () => {
    const provider = recordingProvider();
    const statebox = createStatebox({ provider });
    expect((await refused(() => statebox.create({ env: { 'A=B': 'x' } }), 'env.A=B')).message).toContain(
      '"="',
    );
    await refused(() => statebox.create({ env: { A: 'x\0' } }), 'env.A');
    await refused(() => statebox.create({ labels: { team: 'a\0b' } }), 'labels.team');
    await refused(() => statebox.create({ labels: { 'te\0am': 'a' } }), 'labels.te\0am');
    expect(provider.calls).toEqual([]);
  });

  it('fork refuses a label with NUL', async () => {
    const { provider, box } = setup();
    await refused(() => box.fork({ labels: { a: 'b\0' } }), 'labels.a');
    expect(provider.calls).toEqual([]);
  });
});

describe('readFile validation', () => {
  it(`fills in maxBytes ${DEFAULT_MAX_READ_BYTES} (64 MiB) and passes maxBytes, timeoutMs and signal through`, async () => {
    const { provider, box } = setup();
    await box.readFile('a.txt');
    const signal = new AbortController().signal;
    await box.readFile('/tmp/b.txt', { maxBytes: 10, timeoutMs: 2 ** 31 - 1, signal, encoding: 'utf8' });
    expect(DEFAULT_MAX_READ_BYTES).toBe(64 * 1024 * 1024);
    expect(provider.calls).toEqual([
      { operation: 'readFile', path: '/workspace/a.txt', options: { maxBytes: DEFAULT_MAX_READ_BYTES } },
      {
        operation: 'readFile',
        path: '/tmp/b.txt',
        options: { maxBytes: 10, timeoutMs: 2 ** 31 - 1, signal },
      },
    ]);
  });

  it('refuses a bad maxBytes, timeoutMs, signal or encoding with a ConfigError naming it', async () => {
    const { provider, box } = setup();
    for (const maxBytes of [0, -1, 1.5, Number.NaN]) {
      await refused(() => box.readFile('a.txt', { maxBytes }), 'maxBytes');
    }
    await refused(() => box.readFile('a.txt', { maxBytes: '10' as unknown as number }), 'maxBytes');
    await refused(() => box.readFile('a.txt', { timeoutMs: 2 ** 31 }), 'timeoutMs');
    await refused(() => box.readFile('a.txt', { timeoutMs: 0 }), 'timeoutMs');
    await refused(() => box.readFile('a.txt', { signal: {} as AbortSignal }), 'signal');
    await refused(() => box.readFile('a.txt', { encoding: 'latin1' as 'utf8' }), 'encoding');
    await refused(() => box.readFile('a.txt', 'latin1' as 'utf8'), 'encoding');
    expect(provider.calls).toEqual([]);
  });

  it('refuses a NUL in the path with InvalidPathError', async () => {
    const { provider, box } = setup();
    let error: unknown;
    await box.readFile('a\0b').catch((caught: unknown) => {
      error = caught;
    });
    expect(InvalidPathError.isInstance(error)).toBe(true);
    expect(provider.calls).toEqual([]);
  });
});

describe('writeFile validation', () => {
  it('passes mode, timeoutMs and signal through, and nothing when not given', async () => {
    const { provider, box } = setup();
    const signal = new AbortController().signal;
    await box.writeFile('a.txt', 'x');
    await box.writeFile('b.txt', 'x', { mode: 0o600, timeoutMs: 1000, signal });
    expect(provider.calls).toEqual([
      { operation: 'writeFile', path: '/workspace/a.txt', options: {} },
      { operation: 'writeFile', path: '/workspace/b.txt', options: { mode: 0o600, timeoutMs: 1000, signal } },
    ]);
  });

  it('refuses a bad mode, timeoutMs or signal, and data that is neither text nor bytes', async () => {
    const { provider, box } = setup();
    await refused(() => box.writeFile('a.txt', 'x', { mode: 0o10000 }), 'mode');
    await refused(() => box.writeFile('a.txt', 'x', { mode: -1 }), 'mode');
    await refused(() => box.writeFile('a.txt', 'x', { timeoutMs: 2 ** 31 }), 'timeoutMs');
    await refused(() => box.writeFile('a.txt', 'x', { signal: 'stop' as unknown as AbortSignal }), 'signal');
    const data = await box.writeFile('a.txt', 42 as unknown as string).catch((error: unknown) => error);
    expect(ConfigError.isInstance(data) && data.option).toBe('data');
    expect(provider.calls).toEqual([]);
  });
});

describe('FileTooLargeError', () => {
  it('keeps path, size and maxBytes, and its message names the sandbox, the sizes and the fix', () => {
    const error = new FileTooLargeError('/workspace/big.log', 100_000_000, 67_108_864, {
      sandboxId: 'sbx-9',
      operation: 'readFile',
    });
    expect(error.name).toBe('FileTooLargeError');
    expect(error.path).toBe('/workspace/big.log');
    expect(error.size).toBe(100_000_000);
    expect(error.maxBytes).toBe(67_108_864);
    expect(error.sandboxId).toBe('sbx-9');
    expect(error.operation).toBe('readFile');
    expect(error.isRetryable).toBe(false);
    for (const part of ['/workspace/big.log', 'sbx-9', '100000000', '67108864', 'maxBytes', 'head']) {
      expect(error.message).toContain(part);
    }
  });
});
