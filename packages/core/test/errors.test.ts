import { describe, expect, it, vi } from 'vitest';
import type * as errors from '../src/errors.js';
import {
  ConfigError,
  FileNotFoundError,
  FileTooLargeError,
  InvalidPathError,
  InvalidStateError,
  ProviderError,
  SandboxNotFoundError,
  StateboxError,
  TimeoutError,
  TransientError,
  UnsupportedCapabilityError,
} from '../src/errors.js';

/** A second, independent copy of the module, as when an adapter bundles its own @statebox/core. */
async function secondCopy(): Promise<typeof errors> {
  vi.resetModules();
  return import('../src/errors.js');
}

describe('errors', () => {
  it('isInstance recognises errors from another copy of the class hierarchy, where instanceof fails', async () => {
    const copy = await secondCopy();
    expect(copy.SandboxNotFoundError).not.toBe(SandboxNotFoundError);
    const foreign = new copy.SandboxNotFoundError('sbx-1', { operation: 'exec' });
    expect(foreign instanceof SandboxNotFoundError).toBe(false);
    expect(SandboxNotFoundError.isInstance(foreign)).toBe(true);
    expect(StateboxError.isInstance(foreign)).toBe(true);
    expect(copy.SandboxNotFoundError.isInstance(new SandboxNotFoundError('sbx-2'))).toBe(true);
    expect(TransientError.isInstance(foreign)).toBe(false);
    expect(TimeoutError.isInstance(new copy.TimeoutError('exec', 10))).toBe(true);
    expect(ConfigError.isInstance(new copy.ConfigError('provider', 'bad'))).toBe(true);
    const tooLarge = new copy.FileTooLargeError('/workspace/big', 10, 5);
    expect(tooLarge instanceof FileTooLargeError).toBe(false);
    expect(FileTooLargeError.isInstance(tooLarge)).toBe(true);
    expect(FileNotFoundError.isInstance(tooLarge)).toBe(false);
  });

  it('isInstance tells the classes apart and rejects non-errors', () => {
    const samples: [StateboxError, { isInstance: (error: unknown) => boolean }][] = [
      [new SandboxNotFoundError('sbx-1'), SandboxNotFoundError],
      [new FileNotFoundError('/workspace/a', { sandboxId: 'sbx-1' }), FileNotFoundError],
      [new FileTooLargeError('/workspace/a', 10, 5, { sandboxId: 'sbx-1' }), FileTooLargeError],
      [new TransientError('busy'), TransientError],
      [new UnsupportedCapabilityError('fork', 'local', 'Use create().'), UnsupportedCapabilityError],
      [new InvalidStateError('sbx-1', 'exec', 'suspended', 'Call resume().'), InvalidStateError],
      [new InvalidPathError('../x', 'climbs out.'), InvalidPathError],
      [new TimeoutError('exec', 1000), TimeoutError],
      [new ConfigError('provider', 'bad'), ConfigError],
      [new ProviderError('local', 'broken'), ProviderError],
    ];
    for (const [error, own] of samples) {
      expect(own.isInstance(error), error.name).toBe(true);
      expect(StateboxError.isInstance(error)).toBe(true);
      expect(error).toBeInstanceOf(Error);
      for (const [, other] of samples) {
        if (other !== own) expect(other.isInstance(error), `${error.name} is not another class`).toBe(false);
      }
    }
    for (const value of [null, undefined, 'SandboxNotFoundError', 42, new Error('plain'), {}]) {
      expect(StateboxError.isInstance(value)).toBe(false);
      expect(SandboxNotFoundError.isInstance(value)).toBe(false);
    }
  });

  it('marks each class with a Symbol.for key shared by every copy', () => {
    const error = new TimeoutError('exec', 5);
    expect(Symbol.for('statebox.error') in error).toBe(true);
    expect(Symbol.for('statebox.error.TimeoutError') in error).toBe(true);
    expect(Symbol.for('statebox.error.TransientError') in error).toBe(false);
    const lookalike = {
      [Symbol.for('statebox.error')]: true,
      [Symbol.for('statebox.error.TransientError')]: true,
    };
    expect(TransientError.isInstance(lookalike)).toBe(true);
  });

  it('only TransientError is retryable: not found is never transient', () => {
    expect(new TransientError('busy').isRetryable).toBe(true);
    expect(new SandboxNotFoundError('sbx-1').isRetryable).toBe(false);
    expect(new ProviderError('docker', 'rejected').isRetryable).toBe(false);
    expect(new TimeoutError('exec', 1).isRetryable).toBe(false);
  });

  it('messages name the sandbox, the operation and what to do next', () => {
    const notFound = new SandboxNotFoundError('sbx-42', { operation: 'fork', provider: 'docker' });
    expect(notFound.name).toBe('SandboxNotFoundError');
    expect(notFound.sandboxId).toBe('sbx-42');
    expect(notFound.operation).toBe('fork');
    expect(notFound.message).toContain('sbx-42');
    expect(notFound.message).toContain("'docker'");
    expect(notFound.message).toContain('fork');
    expect(notFound.message).toContain('list()');

    const state = new InvalidStateError('sbx-7', 'exec', 'suspended', 'Call resume() first.');
    expect(state.message).toBe('Cannot exec sandbox sbx-7: it is suspended. Call resume() first.');
    expect(state.status).toBe('suspended');

    const unsupported = new UnsupportedCapabilityError('fork', 'cloudflare', 'Create a new sandbox instead.');
    expect(unsupported.message).toContain("Provider 'cloudflare' does not support fork.");
    expect(unsupported.capability).toBe('fork');
  });

  it('TimeoutError keeps the output produced before the timeout, and the cause is kept', () => {
    const stdout = new TextEncoder().encode('partial');
    const error = new TimeoutError('exec', 1500, { sandboxId: 'sbx-1', stdout });
    expect(error.stdout).toBe(stdout);
    expect(error.stderr.byteLength).toBe(0);
    expect(error.timeoutMs).toBe(1500);
    expect(error.operation).toBe('exec');
    expect(error.message).toContain('1500 ms');
    const cause = new Error('socket hang up');
    expect(new TransientError('retry', { cause }).cause).toBe(cause);
    expect('cause' in new TransientError('no cause')).toBe(false);
  });
});
