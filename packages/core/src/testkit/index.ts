/**
 * `@statebox/core/testkit`: the statebox-v1 conformance suite. An adapter's test file is one call:
 *
 * ```ts
 * import { runConformance } from '@statebox/core/testkit';
 * runConformance({ name: 'local', createProvider: () => local({ home }) });
 * ```
 *
 * Every capability the provider declares is exercised; a case it cannot run is skipped with the reason
 * in its title, and `STATEBOX_REQUIRE=local,docker` turns a skipped suite into a failing one (for CI
 * machines that are supposed to have Docker).
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SandboxCapabilities } from '../capabilities.js';
import type { SandboxProvider } from '../provider.js';
import { type ConformanceContext, createSuiteContext, RUN_LABEL } from './context.js';
import { describeExec } from './exec.js';
import { describeFiles } from './files.js';
import { describeFork } from './fork.js';
import { describeHardening } from './hardening.js';
import { randomSuffix } from './helpers.js';
import { describeLifecycle } from './lifecycle.js';
import { describeOperator } from './operator.js';
import { describeSuspend } from './suspend.js';

export type { ConformanceContext } from './context.js';

export type ConformanceOptions = {
  /** The provider's name, e.g. `'local'`; matched against `STATEBOX_REQUIRE`. */
  name: string;
  /**
   * Creates a provider instance. Called more than once: cases about `get`, `list` and `resume` use a
   * fresh instance, as another process would, to prove that no state lives only in memory.
   */
  createProvider: () => SandboxProvider | Promise<SandboxProvider>;
  /** A reason to skip the whole suite, e.g. `'no Docker daemon at /var/run/docker.sock'`. */
  skip?: string | false | undefined;
  /** Adapter-specific `describe`/`it` blocks, run after the conformance cases with the same tracking. */
  additionalTests?: (context: ConformanceContext) => void;
  /** Per test and per hook. Default 120 000. */
  timeoutMs?: number;
  /** Size of the large-file round trip. Default 64 MiB. */
  largeFileBytes?: number;
};

/** `STATEBOX_REQUIRE`: comma-separated provider names whose suite must run, not be skipped. */
export function requiredProviders(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.STATEBOX_REQUIRE ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
}

// Stands in for the capabilities of a provider that is never created (skipped suite), so that every
// case is still listed, skipped with the suite's reason.
const declaresEverything: SandboxCapabilities = {
  suspend: 'memory',
  fork: 'memory',
  forkSuspended: true,
  forkSource: 'kept',
  execStreaming: true,
  fileModes: true,
  symlinks: true,
  hardLinks: true,
};

/** Registers the statebox-v1 conformance suite for one provider with vitest. */
export function runConformance(options: ConformanceOptions): void {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const skipReason = options.skip || undefined;
  const required = requiredProviders().includes(options.name);

  // Async so that the provider's capabilities are known while the cases are named.
  describe(`statebox-v1 conformance: ${options.name}`, async () => {
    if (skipReason && required) {
      it(`runs, because STATEBOX_REQUIRE names '${options.name}'`, () => {
        expect.fail(
          `the ${options.name} conformance suite is required by STATEBOX_REQUIRE but would be skipped: ${skipReason}`,
        );
      });
      return;
    }

    let provider: SandboxProvider | undefined;
    if (!skipReason) {
      try {
        provider = await options.createProvider();
      } catch (error) {
        it('creates the provider', () => {
          throw error;
        });
        return;
      }
    }

    const { context, enterTest, destroyTestScope, destroyAll } = createSuiteContext({
      name: options.name,
      provider,
      capabilities: provider?.capabilities ?? declaresEverything,
      skipReason,
      timeoutMs,
      largeFileBytes: options.largeFileBytes ?? 64 * 1024 * 1024,
      runId: randomSuffix(),
      createProvider: options.createProvider,
    });

    beforeEach(enterTest);
    afterEach(destroyTestScope, timeoutMs);
    afterAll(async () => {
      if (!provider) return;
      await destroyAll();
      // Sweep what a failed or timed-out case created but could not track (e.g. a fork that finished late).
      const leftovers = await provider.list({ labels: { [RUN_LABEL]: context.runId } }).catch(() => []);
      for (const info of leftovers) await provider.destroy(info.id).catch(() => undefined);
    }, timeoutMs);

    describe('contract', () => {
      context.test('declares statebox-v1, a name and valid capabilities', async () => {
        const declared = context.provider();
        expect(declared.specificationVersion).toBe('statebox-v1');
        expect(typeof declared.name).toBe('string');
        expect(declared.name.length).toBeGreaterThan(0);
        const capabilities = declared.capabilities;
        expect(['memory', 'filesystem', 'none']).toContain(capabilities.suspend);
        expect(['memory', 'filesystem', 'none']).toContain(capabilities.fork);
        expect(['kept', 'restarted']).toContain(capabilities.forkSource);
        for (const flag of [
          'forkSuspended',
          'execStreaming',
          'fileModes',
          'symlinks',
          'hardLinks',
        ] as const) {
          expect(typeof capabilities[flag], `capabilities.${flag}`).toBe('boolean');
        }
        if (capabilities.persistentPaths !== undefined) {
          expect(
            capabilities.persistentPaths.length,
            'persistentPaths lists at least the workdir',
          ).toBeGreaterThan(0);
          for (const path of capabilities.persistentPaths)
            expect(path.startsWith('/'), `persistentPaths: ${path}`).toBe(true);
        }
      });
    });

    describeLifecycle(context);
    describeExec(context);
    describeFiles(context);
    describeSuspend(context);
    describeFork(context);
    describeHardening(context);
    describeOperator(context);

    if (options.additionalTests) {
      const title = `${options.name}: adapter-specific`;
      // A skipped suite has no provider, so the adapter's own blocks are not even collected.
      if (skipReason) context.test(`${title} tests`, async () => undefined);
      else describe(title, () => options.additionalTests!(context));
    }
  });
}
