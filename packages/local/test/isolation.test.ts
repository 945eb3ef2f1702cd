import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatebox, type Sandbox } from '@statebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { local } from '../src/index.js';
import { localSuiteSkip } from '../src/testing.js';

/** Local sandboxes need Linux namespaces and overlayfs: each suite here is skipped, with the reason, without them. */
const skip = localSuiteSkip();
const skipped = skip ? ` (skipped: ${skip})` : '';

let home: string;
const boxes: Sandbox[] = [];

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'statebox-isolation-'));
});

afterAll(async () => {
  for (const box of boxes) await box.destroy().catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

async function create(options: { network?: boolean } = {}): Promise<Sandbox> {
  const box = await createStatebox({ provider: local({ home, ...options }) }).create();
  boxes.push(box);
  return box;
}

/** Host pids whose command line contains `needle`. */
function hostProcesses(needle: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe.skipIf(Boolean(skip))(`local isolation${skipped}`, () => {
  it('sees none of the host: no /etc/shadow, no host home, no state directory', async () => {
    const box = await create();
    const marker = join(tmpdir(), `statebox-host-secret-${process.pid}`);
    await writeFile(marker, 'secret');
    try {
      const result = await box.exec(
        `test -e /etc/shadow && echo shadow; test -e ${JSON.stringify(home)} && echo home; ` +
          `test -e ${JSON.stringify(marker)} && echo marker; ls -A /root | wc -l; cat /etc/passwd | wc -l`,
      );
      expect(result.stdout.split('\n').filter(Boolean)).toEqual(['0', '2']);
    } finally {
      await rm(marker, { force: true });
    }
  });

  it('mounts system directories read-only, and a sandbox cannot remount them or make devices', async () => {
    const box = await create();
    const result = await box.exec(
      'touch /usr/statebox-probe 2>/dev/null && echo wrote-usr; touch /etc/probe 2>/dev/null && echo wrote-etc; ' +
        'touch /probe 2>/dev/null && echo wrote-root; mount -o remount,rw,bind /usr 2>/dev/null && echo remounted; ' +
        'mknod /tmp/disk b 8 0 2>/dev/null && echo mknod; echo done',
    );
    expect(result.stdout).toBe('done\n');
  });

  it('has its own PID namespace: it cannot see host processes or other sandboxes', async () => {
    const first = await create();
    const second = await create();
    await first.exec('sleep 4242 >/dev/null 2>&1 &');
    const seen = await second.exec(
      'for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr "\\0" " "; echo; done',
    );
    expect(seen.stdout).not.toContain('sleep 4242');
    expect(seen.stdout).not.toContain('vitest');
    const own = await first.exec(
      'for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr "\\0" " "; echo; done',
    );
    expect(own.stdout).toContain('sleep 4242');
  });

  it('keeps files of one sandbox invisible to another', async () => {
    const first = await create();
    const second = await create();
    await first.writeFile('/workspace/only-in-first.txt', 'x');
    await first.writeFile('/tmp/only-in-first-tmp.txt', 'x');
    const search = await second.exec('find / -name "only-in-first*" 2>/dev/null | wc -l');
    expect(search.stdout.trim()).toBe('0');
  });

  describe('network', () => {
    let server: Server;
    let port = 0;
    beforeAll(async () => {
      server = createServer((socket) => socket.end('hello from the host\n'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const connect = (port: number) =>
      `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port} && head -1 <&3' 2>/dev/null || echo unreachable`;

    it('is off by default: only a loopback of its own', async () => {
      const box = await create();
      expect((await box.exec(connect(port))).stdout.trim()).toBe('unreachable');
      const interfaces = await box.exec("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
      expect(interfaces.stdout.trim()).toBe('lo');
    });

    it('its loopback works for servers inside the sandbox', async () => {
      const box = await create();
      const result = await box.exec(
        "command -v python3 >/dev/null || { echo 'no python3'; exit 0; }; " +
          'python3 -c \'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print("bound")\'',
      );
      expect(['bound', 'no python3']).toContain(result.stdout.trim());
    });

    it('is the host network with { network: true }', async () => {
      const box = await create({ network: true });
      expect((await box.exec(connect(port))).stdout.trim()).toBe('hello from the host');
    });
  });

  it('kills every process of a sandbox on suspend and on destroy', async () => {
    const box = await create();
    await box.exec('sleep 31337 >/dev/null 2>&1 & sleep 31338 >/dev/null 2>&1 &');
    expect(hostProcesses('sleep 3133').length).toBe(2);
    await box.suspend();
    expect(hostProcesses('sleep 3133')).toEqual([]);
    await box.resume();
    await box.exec('sleep 31339 >/dev/null 2>&1 &');
    expect(hostProcesses('sleep 31339').length).toBe(1);
    await box.destroy();
    expect(hostProcesses('sleep 31339')).toEqual([]);
  });

  it('leaves no mount on the host', async () => {
    const box = await create();
    await box.exec('true');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(home);
  });
});
