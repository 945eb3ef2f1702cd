import { afterAll, beforeAll, it, type TestContext } from 'vitest';
import type { SandboxCapabilities } from '../capabilities.js';
import type { CreateRequest, SandboxProvider } from '../provider.js';
import type { Sandbox } from '../sandbox.js';
import { createStatebox, type Statebox } from '../statebox.js';

/** What `additionalTests` and the built-in groups get: the provider under test and sandbox tracking. */
export type ConformanceContext = {
  /** The provider instance the suite runs against (created once, before the tests). */
  provider: () => SandboxProvider;
  /** A `Statebox` bound to `provider()`. */
  statebox: () => Statebox;
  /** Registers a sandbox for destruction after the current test (or, outside a test, after the suite). */
  track: <T extends { readonly id: string }>(box: T) => T;
  /** A new provider instance from `options.createProvider`, as another process would have. */
  freshProvider: () => Promise<SandboxProvider>;
};

/**
 * The internal context of one suite run: the public context plus what the groups need to name their
 * cases. When the whole suite is skipped, `skipReason` is set and the provider is never created.
 * @internal
 */
export type SuiteContext = ConformanceContext & {
  readonly name: string;
  readonly capabilities: SandboxCapabilities;
  readonly skipReason: string | undefined;
  readonly timeoutMs: number;
  readonly largeFileBytes: number;
  /** Unique per run, used as a label value so that list() results from other runs do not interfere. */
  readonly runId: string;
  /** Creates a sandbox through the user API, labelled with this run, tracked. */
  create: (request?: CreateRequest) => Promise<Sandbox>;
  /**
   * Registers a case. `unsupported` names why this provider cannot run it (a capability it does not
   * declare); the case is then skipped with that reason in its title, never silently passed. A case that
   * learns only while running that it cannot check something (a tool missing from the image) calls the
   * vitest context's `skip(note)`, so it is reported as skipped with that note, not as passed.
   */
  test: (title: string, fn: (context: TestContext) => Promise<void>, unsupported?: string) => void;
  /** Creates one sandbox for a whole describe block (in beforeAll) and destroys it in afterAll. */
  shared: (request?: CreateRequest) => () => Sandbox;
};

export const RUN_LABEL = 'statebox-conformance';

/** Returns why a capability is missing, or undefined when `declared` is true. */
export function unless(declared: boolean, capabilities: SandboxCapabilities, key: keyof SandboxCapabilities) {
  return declared ? undefined : `provider declares ${key}: ${JSON.stringify(capabilities[key])}`;
}

type Setup = {
  name: string;
  provider: SandboxProvider | undefined;
  capabilities: SandboxCapabilities;
  skipReason: string | undefined;
  timeoutMs: number;
  largeFileBytes: number;
  runId: string;
  createProvider: () => SandboxProvider | Promise<SandboxProvider>;
};

/**
 * Builds the suite context and the tracker behind `track`. Sandboxes tracked inside a test are destroyed
 * after that test; the caller wires `destroyTestScope` to `afterEach` and `destroyAll` to `afterAll`.
 * @internal
 */
export function createSuiteContext(setup: Setup): {
  context: SuiteContext;
  enterTest: () => void;
  destroyTestScope: () => Promise<void>;
  destroyAll: () => Promise<void>;
} {
  const suiteScope = new Set<string>();
  let testScope: Set<string> | undefined;
  let statebox: Statebox | undefined;

  const provider = (): SandboxProvider => {
    if (!setup.provider) throw new Error(`the ${setup.name} provider was not created: ${setup.skipReason}`);
    return setup.provider;
  };

  const destroy = async (ids: Set<string>): Promise<void> => {
    const failures: unknown[] = [];
    for (const id of [...ids]) {
      try {
        await provider().destroy(id);
        ids.delete(id);
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) {
      throw new AggregateError(
        failures,
        `could not destroy ${failures.length} sandbox(es): ${[...ids].join(', ')}`,
      );
    }
  };

  const track = <T extends { readonly id: string }>(box: T): T => {
    (testScope ?? suiteScope).add(box.id);
    return box;
  };

  const context: SuiteContext = {
    name: setup.name,
    capabilities: setup.capabilities,
    skipReason: setup.skipReason,
    timeoutMs: setup.timeoutMs,
    largeFileBytes: setup.largeFileBytes,
    runId: setup.runId,
    provider,
    statebox: () => {
      statebox ??= createStatebox({ provider: provider() });
      return statebox;
    },
    track,
    freshProvider: async () => setup.createProvider(),
    create: async (request = {}) =>
      track(
        await context
          .statebox()
          .create({ ...request, labels: { [RUN_LABEL]: setup.runId, ...request.labels } }),
      ),
    test: (title, fn, unsupported) => {
      const reason = setup.skipReason ?? unsupported;
      it.skipIf(Boolean(reason))(`${title}${reason ? ` (skipped: ${reason})` : ''}`, fn, setup.timeoutMs);
    },
    shared: (request = {}) => {
      let box: Sandbox | undefined;
      const ids = new Set<string>();
      // A skipped suite has no provider; its cases are all skipped, so the group needs no sandbox.
      if (!setup.skipReason) {
        beforeAll(async () => {
          box = await context
            .statebox()
            .create({ ...request, labels: { [RUN_LABEL]: setup.runId, ...request.labels } });
          ids.add(box.id);
        }, setup.timeoutMs);
        afterAll(() => destroy(ids), setup.timeoutMs);
      }
      return () => {
        if (!box)
          throw new Error('the shared sandbox of this group was not created (see the beforeAll error)');
        return box;
      };
    },
  };

  return {
    context,
    enterTest: () => {
      testScope = new Set();
    },
    destroyTestScope: async () => {
      const scope = testScope;
      testScope = undefined;
      if (scope) await destroy(scope);
    },
    destroyAll: () => destroy(suiteScope),
  };
}
