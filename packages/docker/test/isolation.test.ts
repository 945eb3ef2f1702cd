import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileNotFoundError, ProviderError } from '@statebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerProvider } from '../src/index.js';
import { encoder, exec, inspect, run, skip, useSandboxes } from './helpers.js';

/**
 * The threat model of the README, one `it` per line: what a sandbox's commands, the caller's inputs and
 * other sandboxes may and may not reach. Each attack has a positive control, so that a test passes
 * because the attack failed, not because nothing worked.
 */
const { provider, created } = useSandboxes();
const NETNS = `statebox-test-${process.pid}`;
const OUTSIDE = '198.18.0.2'; // an "internet" host: a network namespace this test makes
const METADATA = '169.254.169.254';

function sh(command: string): string {
  return execFileSync('sh', ['-c', command], { encoding: 'utf8' });
}

/** An HTTP GET from inside a sandbox (busybox nc; its static wget crashes on lookups): true when it got the page. */
async function fetches(instance: DockerProvider, sandboxId: string, url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  const output = await exec(
    instance,
    sandboxId,
    `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${hostname} ${port}`,
  );
  return output.exitCode === 0 && output.stdout.includes('statebox-secret');
}

/**
 * The same from the host, as the positive control (no proxy from the environment). Asynchronous: the host
 * server runs in this process.
 */
async function hostFetches(url: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const request = get(url, { timeout: 3000 }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () => resolve(body.includes('statebox-secret')));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}

describe.skipIf(Boolean(skip))(`docker threat model${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let plain: DockerProvider;
  let egress: DockerProvider;
  let isolated = ''; // network: 'none' (the default)
  let outbound = ''; // network: 'egress'
  let server = ''; // network: 'egress', serves http://<its address>:8080
  let serverAddress = '';
  let hostServer: Server;
  let hostPort = 0;
  let outsideServer: ReturnType<typeof spawn> | undefined;

  beforeAll(async () => {
    plain = provider();
    egress = provider({ network: 'egress' });
    [isolated, outbound, server] = (
      await Promise.all([plain.create({}), egress.create({}), egress.create({})])
    ).map((info) => info.id) as [string, string, string];
    created.push(isolated, outbound, server);
    await run(
      egress,
      server,
      'mkdir -p www && echo statebox-secret > www/index.html && httpd -p 8080 -h www',
    );
    serverAddress = Object.values(
      inspect(server).NetworkSettings.Networks as Record<string, { IPAddress: string }>,
    )[0]!.IPAddress;

    hostServer = createServer((_request, response) => response.end('statebox-secret from the host\n'));
    await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
    hostPort = (hostServer.address() as AddressInfo).port;

    // "The internet": a namespace at 198.18.0.2 that also answers as the cloud metadata address.
    sh(
      [
        `ip netns add ${NETNS}`,
        `ip link add sbt${process.pid % 100000} type veth peer name sbn${process.pid % 100000}`,
        `ip link set sbn${process.pid % 100000} netns ${NETNS}`,
        `ip addr add 198.18.0.1/30 dev sbt${process.pid % 100000}`,
        `ip link set sbt${process.pid % 100000} up`,
        `ip route add ${METADATA}/32 dev sbt${process.pid % 100000}`,
        `ip netns exec ${NETNS} ip addr add ${OUTSIDE}/30 dev sbn${process.pid % 100000}`,
        `ip netns exec ${NETNS} ip addr add ${METADATA}/32 dev sbn${process.pid % 100000}`,
        `ip netns exec ${NETNS} ip link set sbn${process.pid % 100000} up`,
        `ip netns exec ${NETNS} ip link set lo up`,
        `ip netns exec ${NETNS} ip route add default via 198.18.0.1`,
      ].join(' && '),
    );
    const serve =
      "require('http').createServer((q, r) => r.end('statebox-secret from outside\\n')).listen(8080)";
    outsideServer = spawn('ip', ['netns', 'exec', NETNS, process.execPath, '-e', serve], { stdio: 'ignore' });
    for (let attempt = 0; attempt < 50 && !(await hostFetches(`http://${OUTSIDE}:8080/`)); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  afterAll(() => {
    hostServer?.close();
    outsideServer?.kill('SIGKILL');
    try {
      sh(`ip netns del ${NETNS}; ip link del sbt${process.pid % 100000} 2>/dev/null; true`);
    } catch {
      // Already gone.
    }
  });

  it("network 'none' (the default): the sandbox has loopback only", async () => {
    expect(inspect(isolated).HostConfig.NetworkMode).toBe('none');
    const interfaces = (await run(plain, isolated, 'cat /proc/net/dev'))
      .split('\n')
      .slice(2)
      .map((line) => line.split(':')[0]!.trim())
      .filter(Boolean);
    expect(interfaces).toEqual(['lo']);
    // Control: loopback inside works.
    await run(
      plain,
      isolated,
      'mkdir -p www && echo statebox-secret > www/index.html && httpd -p 8081 -h www',
    );
    expect(await fetches(plain, isolated, 'http://127.0.0.1:8081/')).toBe(true);
  });

  it('no sandbox reaches a server in another sandbox, with either network setting', async () => {
    // Control: the server answers on its own address.
    expect(await fetches(egress, server, `http://${serverAddress}:8080/`)).toBe(true);
    expect(await fetches(plain, isolated, `http://${serverAddress}:8080/`)).toBe(false);
    expect(await fetches(egress, outbound, `http://${serverAddress}:8080/`)).toBe(false);
  });

  it('no sandbox reaches a host server listening on 0.0.0.0, on any host address', async () => {
    const addresses = Object.values(networkInterfaces())
      .flat()
      .filter((entry) => entry?.family === 'IPv4' && !entry.internal)
      .map((entry) => entry!.address);
    // The egress sandbox's own gateway (a host address on its bridge) is among them.
    const gateway = Object.values(
      inspect(outbound).NetworkSettings.Networks as Record<string, { Gateway: string }>,
    )[0]!.Gateway;
    expect(addresses).toContain(gateway);
    for (const address of addresses) {
      // Control: the host itself reaches the server there.
      expect(await hostFetches(`http://${address}:${hostPort}/`), address).toBe(true);
      expect(await fetches(plain, isolated, `http://${address}:${hostPort}/`), address).toBe(false);
      expect(await fetches(egress, outbound, `http://${address}:${hostPort}/`), address).toBe(false);
    }
    // 127.0.0.1 inside a sandbox is the sandbox's own loopback.
    expect(await fetches(egress, outbound, `http://127.0.0.1:${hostPort}/`)).toBe(false);
  });

  it("network 'egress' reaches outside hosts (NAT); 'none' does not", async () => {
    expect(await fetches(egress, outbound, `http://${OUTSIDE}:8080/`)).toBe(true);
    expect(await fetches(plain, isolated, `http://${OUTSIDE}:8080/`)).toBe(false);
  });

  it("network 'egress' does not reach link-local addresses (cloud metadata)", async () => {
    // Control: the host reaches the metadata address in the test namespace.
    expect(await hostFetches(`http://${METADATA}:8080/`)).toBe(true);
    expect(await fetches(egress, outbound, `http://${METADATA}:8080/`)).toBe(false);
  });

  it("a fork of an 'egress' sandbox gets a network of its own and the same isolation", async () => {
    const child = await egress.fork(outbound);
    created.push(child.id);
    expect(inspect(child.id).HostConfig.NetworkMode).toBe(`statebox-${child.id}`);
    expect(await fetches(egress, child.id, `http://${OUTSIDE}:8080/`)).toBe(true);
    expect(await fetches(egress, child.id, `http://${serverAddress}:8080/`)).toBe(false);
  });

  it("sees only its own processes: neither the host's nor another sandbox's", async () => {
    await run(egress, server, 'sleep 4242 >/dev/null 2>&1 &');
    const processes = await run(plain, isolated, 'ps -o pid,args');
    expect(processes).not.toMatch(/sleep 4242|dockerd|containerd|vitest/);
    // Control: the sleeper is visible where it runs.
    expect(await run(egress, server, 'ps -o args')).toMatch(/sleep 4242/);
  });

  it("sees no other sandbox's files, and cannot open the host paths its mount table names", async () => {
    await run(egress, server, 'echo mine > /workspace/private && echo mine > /root/private');
    expect((await exec(plain, isolated, 'cat /workspace/private /root/private')).exitCode).not.toBe(0);
    const mounts = await run(plain, isolated, 'cat /proc/self/mountinfo');
    const hostPaths = [...new Set(mounts.match(/\/var\/lib\/[^\s,:]+/g) ?? [])];
    expect(hostPaths.length).toBeGreaterThan(0);
    for (const path of hostPaths.slice(0, 5)) {
      expect((await exec(plain, isolated, `ls ${path}`)).exitCode, path).not.toBe(0);
    }
  });

  it('host-global kernel interfaces are read-only: sysctls, sysrq, /sys, cgroups', async () => {
    const before = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
    for (const attempt of [
      'echo "|/workspace/x" > /proc/sys/kernel/core_pattern',
      'echo 10 > /proc/sys/vm/swappiness',
      'echo h > /proc/sysrq-trigger',
      'touch /sys/kernel/statebox',
      'echo $$ > /sys/fs/cgroup/freezer/cgroup.procs',
      'echo 3 > /proc/sys/vm/drop_caches',
    ]) {
      expect((await exec(plain, isolated, attempt)).exitCode, attempt).not.toBe(0);
    }
    expect(readFileSync('/proc/sys/kernel/core_pattern', 'utf8')).toBe(before);
  });

  it('cannot mount, make namespaces, or open host devices it makes nodes for', async () => {
    for (const attempt of [
      'mount -t tmpfs none /mnt',
      'unshare -m true',
      'unshare -U true',
      'mknod /tmp/disk b 253 0 && head -c 1 /tmp/disk',
      'mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem',
    ]) {
      expect((await exec(plain, isolated, attempt)).exitCode, attempt).not.toBe(0);
    }
    // Control: a command that needs nothing special works.
    expect((await exec(plain, isolated, 'true')).exitCode).toBe(0);
  });

  it("the caller's paths resolve inside the sandbox: a symlink to a host file reads and writes the sandbox's", async () => {
    const secretDirectory = mkdtempSync(join(tmpdir(), 'statebox-host-'));
    const secret = join(secretDirectory, 'secret');
    writeFileSync(secret, 'host secret\n');
    try {
      // The same directory exists in the sandbox (empty): the link must lead there, not to the host's.
      await run(
        plain,
        isolated,
        `mkdir -p ${secretDirectory} && ln -sf ${secret} /workspace/to-host && ln -sf ${secretDirectory} /workspace/dir-to-host`,
      );
      await expect(plain.readFile(isolated, '/workspace/to-host', { maxBytes: 1024 })).rejects.toSatisfy(
        FileNotFoundError.isInstance,
      );
      await plain.writeFile(isolated, '/workspace/dir-to-host/secret', encoder.encode('written inside\n'));
      expect(readFileSync(secret, 'utf8')).toBe('host secret\n');
      expect(await run(plain, isolated, `cat ${secret}`)).toBe('written inside\n');
    } finally {
      rmSync(secretDirectory, { recursive: true, force: true });
    }
  });

  it('host tools run with a fixed environment: a PATH from the caller cannot swap them', async () => {
    const trap = mkdtempSync(join(tmpdir(), 'statebox-path-'));
    for (const tool of ['flock', 'iptables', 'cp', 'mount', 'sh']) {
      writeFileSync(join(trap, tool), `#!/bin/sh\ntouch ${trap}/ran-${tool}\nexit 1\n`);
      chmodSync(join(trap, tool), 0o755);
    }
    const path = process.env.PATH;
    process.env.PATH = `${trap}:${path}`;
    try {
      const child = await egress.fork(outbound);
      created.push(child.id);
      await egress.suspend(child.id);
      await egress.resume(child.id);
    } finally {
      process.env.PATH = path;
    }
    for (const tool of ['flock', 'iptables', 'cp', 'mount', 'sh'])
      expect(existsSync(join(trap, `ran-${tool}`))).toBe(false);
    rmSync(trap, { recursive: true, force: true });
  });

  it('error messages name the sandbox, the operation and the fix, never host paths', async () => {
    const instance = provider();
    const source = await instance.create({});
    created.push(source.id);
    await run(instance, source.id, 'echo a > a');
    const child = await instance.fork(source.id);
    created.push(child.id);
    await instance.suspend(child.id);
    // Remove the sealed layer the child stands on, behind statebox's back.
    const volume = inspect(child.id).Mounts.find(
      (mount: { Destination: string }) => mount.Destination === '/workspace',
    ).Name;
    const layers = JSON.parse(
      execFileSync('docker', ['volume', 'inspect', volume], { encoding: 'utf8' }),
    )[0].Labels['statebox.layers'].split(',');
    const stateDir = instance.options.stateDir;
    rmSync(join(stateDir, 'l', layers[1]), { recursive: true, force: true });
    const error = await instance.resume(child.id).catch((caught: unknown) => caught);
    expect(ProviderError.isInstance(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain(child.id);
    expect(message).toMatch(/resume/);
    expect(message).toMatch(/destroy/);
    expect(message).not.toContain(stateDir);
    expect(message).not.toMatch(/\/var\/lib\/docker/);
    expect(String((error as Error & { cause?: Error }).cause?.message)).not.toContain(stateDir);
  });
});
