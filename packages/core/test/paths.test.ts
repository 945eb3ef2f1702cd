import { describe, expect, it } from 'vitest';
import { InvalidPathError } from '../src/errors.js';
import { DEFAULT_WORKDIR, resolveSandboxPath } from '../src/paths.js';

describe('resolveSandboxPath', () => {
  it('takes relative paths from the workdir', () => {
    expect(DEFAULT_WORKDIR).toBe('/workspace');
    expect(resolveSandboxPath('a.txt')).toBe('/workspace/a.txt');
    expect(resolveSandboxPath('dir/sub/')).toBe('/workspace/dir/sub');
    expect(resolveSandboxPath('./a/../b')).toBe('/workspace/b');
    expect(resolveSandboxPath('.')).toBe('/workspace');
    expect(resolveSandboxPath('x', '/home/agent')).toBe('/home/agent/x');
    expect(resolveSandboxPath('dir with space/naïve ☃.txt')).toBe('/workspace/dir with space/naïve ☃.txt');
  });

  it('normalises absolute paths, which may point anywhere in the sandbox', () => {
    expect(resolveSandboxPath('/etc/passwd')).toBe('/etc/passwd');
    expect(resolveSandboxPath('/workspace//a/./b/')).toBe('/workspace/a/b');
    expect(resolveSandboxPath('/../etc')).toBe('/etc');
    expect(resolveSandboxPath('/')).toBe('/');
  });

  it('rejects relative paths that climb out of the workdir', () => {
    for (const path of ['..', '../x', '../../etc/passwd', 'a/../../b', '../workspace2/x']) {
      expect(() => resolveSandboxPath(path), path).toThrow(InvalidPathError);
    }
    // Climbing out and back in stays inside, so it is allowed.
    expect(resolveSandboxPath('../workspace/x')).toBe('/workspace/x');
  });

  it('rejects empty paths, NUL bytes and non-strings, naming the sandbox', () => {
    const cases: unknown[] = ['', 'a\0b', undefined, 42, null];
    for (const path of cases) {
      let thrown: unknown;
      try {
        resolveSandboxPath(path, '/workspace', 'sbx-9');
      } catch (error) {
        thrown = error;
      }
      expect(InvalidPathError.isInstance(thrown), String(path)).toBe(true);
      expect((thrown as InvalidPathError).sandboxId).toBe('sbx-9');
    }
  });

  it('says what to do in the message', () => {
    expect(() => resolveSandboxPath('../../etc/passwd')).toThrow(
      /Pass an absolute sandbox path if you mean \/etc\/passwd/,
    );
  });
});
