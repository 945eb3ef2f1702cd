import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../src/hash.js';
import { newId, randomHex } from '../src/ids.js';
import { shellQuote } from '../src/shell.js';

const hostile = [
  '',
  'plain',
  "it's",
  "''''",
  'a b\tc\nd',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, on purpose
  '$(touch /tmp/pwned) `id` ${HOME} $HOME',
  '"double" \\back\\ !bang *glob? [x] ~user',
  '-n',
  'naïve ☃ 🐳',
  "end with quote'",
];

describe('shellQuote', () => {
  for (const shell of ['sh', 'bash']) {
    it(`makes every string one literal word for ${shell}`, () => {
      for (const value of hostile) {
        // printf '%s\0' prints each argument it got, so splitting or expansion would show.
        const out = execFileSync(shell, ['-c', `printf '%s\\0' ${shellQuote(value)}`], { encoding: 'utf8' });
        expect(out).toBe(`${value}\0`);
      }
    });
  }
});

describe('sha256', () => {
  it('matches sha256sum for bytes and strings', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'adapter-kit-hash-'));
    try {
      const bytes = Uint8Array.from({ length: 70_000 }, (_, index) => (index * 7919) % 256);
      await writeFile(join(directory, 'data'), bytes);
      const expected = execFileSync('sha256sum', [join(directory, 'data')], { encoding: 'utf8' }).split(
        ' ',
      )[0];
      expect(sha256(bytes)).toBe(expected);
      expect(sha256('naïve ☃')).toBe(sha256(new TextEncoder().encode('naïve ☃')));
      expect(sha256('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('ids', () => {
  it('are the prefix and random hex of the asked length, and do not repeat', () => {
    expect(newId('sbx-')).toMatch(/^sbx-[0-9a-f]{16}$/);
    expect(newId('u-', 4)).toMatch(/^u-[0-9a-f]{8}$/);
    expect(randomHex(3)).toMatch(/^[0-9a-f]{6}$/);
    const ids = new Set(Array.from({ length: 10_000 }, () => newId('sb-')));
    expect(ids.size).toBe(10_000);
  });
});
