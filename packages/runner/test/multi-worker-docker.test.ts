import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatebox } from '@statebox/core';
import { docker } from '@statebox/docker';
import { startEmulator } from '@statebox/managed-agents-emulator';
import { afterAll, describe, expect, it } from 'vitest';
import {
  callsTranscript,
  executions,
  expectExactlyOnce,
  expectRanOnce,
  FORK_FROM_METADATA,
  inFlight,
  type Tally,
  tagsOf,
  until,
  WorkerPool,
  waitForSuspended,
} from './multi-worker.js';

// The smaller Docker variant of multi-worker.test.ts: two worker processes, sweeping every 300 ms,
// through idle, resume, fork, a rolling restart, a SIGKILL and a lost lease mid-call, on the Debian
// image .ci/docker.sh builds.
const IMAGE = 'statebox/debian:bookworm';

function skipReason(): string | undefined {
  try {
    execFileSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' });
  } catch {
    return `no Docker daemon, or no ${IMAGE} image (build it with packages/docker/scripts/build-debian-image.sh)`;
  }
  return process.getuid?.() === 0
    ? undefined
    : 'the docker provider keeps its layers in a root-owned directory';
}

const required = (process.env.STATEBOX_REQUIRE ?? '').split(',').includes('docker');
const reason = skipReason();
const cleanup: Array<() => Promise<void>> = [];
const tally: Tally = {
  sessions: 0,
  toolCalls: 0,
  duplicateResults: 0,
  lostResults: 0,
  callsInFlightAtLoss: 0,
  duplicateItemWaited: 0,
};

afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  if (tally.sessions > 0) console.log(`multi-worker (docker): ${JSON.stringify(tally)}`);
});

describe('several workers on one environment (docker provider)', () => {
  it.skipIf(Boolean(reason) && !required)(
    `two workers: idle, resume, fork, a rolling restart, a SIGKILL and a lost lease, every call once${reason ? ` (skipped: ${reason})` : ''}`,
    async () => {
      if (reason) throw new Error(`STATEBOX_REQUIRE names docker, but: ${reason}`);
      const emulator = await startEmulator({
        leaseTtlSeconds: 4,
        transcripts: [
          callsTranscript('evening', 2),
          callsTranscript('morning', 2),
          callsTranscript('branch', 2),
          callsTranscript('long', 4, 1),
        ],
      });
      cleanup.push(() => emulator.close());
      const provider = docker({ image: IMAGE });
      const statebox = createStatebox({ provider });
      const environment = emulator.createEnvironment('docker-workers');
      cleanup.push(async () => {
        for (const box of await statebox.list({ labels: { 'statebox.environment': environment.id } })) {
          await box.destroy().catch(() => undefined);
        }
        await provider.close();
      });
      const home = mkdtempSync(join(tmpdir(), 'statebox-multi-docker-'));
      cleanup.push(async () => rmSync(home, { recursive: true, force: true }));
      const workers = new WorkerPool(emulator, environment, home, {
        WORKER_PROVIDER: 'docker',
        WORKER_IMAGE: IMAGE,
        WORKER_JANITOR_MS: '300',
        WORKER_IDLE_MS: '1000',
      });
      cleanup.push(() => workers.stopAll());
      // MULTI_WORKER_EVENTS=<file>: every worker's events, written at the end (to read a failed run).
      cleanup.push(async () => {
        if (!process.env.MULTI_WORKER_EVENTS) return;
        const dump = workers.workers.map((worker) => ({ worker: worker.name, events: worker.events }));
        writeFileSync(process.env.MULTI_WORKER_EVENTS, JSON.stringify(dump, null, 1));
      });
      workers.start();
      workers.start();

      const sessions = [1, 2].map(() =>
        emulator.createSession({ environmentId: environment.id, message: 'evening' }),
      ) as [string, string];
      for (const sessionId of sessions) await emulator.waitForTurns(sessionId, 1, 120_000);
      await waitForSuspended(statebox, sessions, 90_000);
      for (const sessionId of sessions) emulator.sendMessage(sessionId, 'morning');
      for (const sessionId of sessions) await emulator.waitForTurns(sessionId, 2, 120_000);
      const child = emulator.createSession({
        environmentId: environment.id,
        metadata: { [FORK_FROM_METADATA]: sessions[0] },
        message: 'branch',
      });
      await emulator.waitForTurns(child, 1, 120_000);

      const drained = emulator.createSession({ environmentId: environment.id, message: 'long' });
      await until(() => emulator.report(drained).steps.length >= 2, 120_000, 'two calls answered');
      const draining = await workers.servingWorker(drained);
      draining.process.kill('SIGTERM');
      workers.start();
      expect(await draining.exited).toBe(0);
      await emulator.waitForTurns(drained, 1, 120_000);

      // SIGKILL mid-call: the command runs on in the container (closing the exec's connection does not
      // end it) and records its answer, which the worker that claims the item after the TTL posts.
      const killed = emulator.createSession({ environmentId: environment.id, message: 'long' });
      await until(
        () => emulator.report(killed).steps.length >= 2,
        120_000,
        'two calls of the killed session',
      );
      const victim = await workers.servingWorker(killed);
      const killedTag = `long-${emulator.report(killed).steps.length + 1}`;
      if (await inFlight(emulator, statebox, killed, killedTag)) tally.callsInFlightAtLoss++;
      victim.process.kill('SIGKILL');
      workers.start();
      // A lost lease mid-call: the old holder stops waiting, the command ends on its own, once.
      const expired = emulator.createSession({ environmentId: environment.id, message: 'long' });
      await until(
        () => emulator.report(expired).steps.length >= 2,
        120_000,
        'two calls of the expired session',
      );
      const item = await until(
        () => emulator.workItems(expired).find((work) => work.state === 'active'),
        10_000,
        'an active item',
      );
      const expiredTag = `long-${emulator.report(expired).steps.length + 1}`;
      if (await inFlight(emulator, statebox, expired, expiredTag)) tally.callsInFlightAtLoss++;
      emulator.faults.expireLease(item.id);
      for (const sessionId of [killed, expired]) await emulator.waitForTurns(sessionId, 1, 120_000);

      for (const sessionId of [...sessions, child, drained, killed, expired]) {
        expectExactlyOnce(emulator, sessionId, tally);
      }
      for (const [sessionId, tag] of [
        [killed, killedTag],
        [expired, expiredTag],
      ] as const) {
        const step = emulator.report(sessionId).steps.find((candidate) => candidate.content === tag);
        expect(step, `${tag} of ${sessionId} answered with its own output`).toMatchObject({ isError: false });
      }
      await workers.stopAll();
      for (const sessionId of sessions) {
        expectRanOnce(await executions(statebox, sessionId), [
          ...tagsOf('evening', 2),
          ...tagsOf('morning', 2),
        ]);
      }
      expectRanOnce(await executions(statebox, child), [
        ...tagsOf('evening', 2),
        ...tagsOf('morning', 2),
        ...tagsOf('branch', 2),
      ]);
      for (const sessionId of [drained, killed, expired]) {
        expectRanOnce(await executions(statebox, sessionId), tagsOf('long', 4));
      }
    },
    400_000,
  );
});
