import type { SandboxProvider } from '@statebox/core';
import { directCaller, directDescriptions } from './raw-sdk/cloudflare.ts';
import type { Baseline, Scenario } from './scenarios.ts';

type CloudflareModule = {
  CloudflareProvider: new (settings: {
    url: string;
    token: string;
    requestTimeoutMs: number;
    lifecycleTimeoutMs: number;
  }) => SandboxProvider;
};
type TestingModule = {
  localWorkerSkipReason(): Promise<string | undefined>;
  startLocalWorker(): Promise<{ url: string; token: string; stop(): Promise<void> }>;
};

/**
 * Cloudflare: the statebox Worker (a deployed one with STATEBOX_CLOUDFLARE_URL and _TOKEN, else the
 * local one in workerd with Docker containers). Each baseline is the same operation done straight with
 * the SDK inside the Worker (`POST /v1/direct/<op>`, timed there), so the table shows what the adapter
 * adds: the HTTP hop from Node, the registry, the exec wrapper and the file probes.
 */
export const cloudflareScenario: Scenario = {
  provider: 'cloudflare',
  targets: [],
  async open() {
    let adapter: CloudflareModule;
    let testing: TestingModule;
    try {
      adapter = (await import('@statebox/cloudflare' as string)) as CloudflareModule;
      testing = (await import('@statebox/cloudflare/testing' as string)) as TestingModule;
    } catch (error) {
      return {
        skip: `@statebox/cloudflare is not built (${(error as Error).message.split('\n')[0]}); run pnpm build.`,
      };
    }
    let worker: { url: string; token: string; stop(): Promise<void> };
    if (process.env.STATEBOX_CLOUDFLARE_URL && process.env.STATEBOX_CLOUDFLARE_TOKEN) {
      worker = {
        url: process.env.STATEBOX_CLOUDFLARE_URL,
        token: process.env.STATEBOX_CLOUDFLARE_TOKEN,
        stop: async () => {},
      };
    } else {
      const reason = await testing.localWorkerSkipReason();
      if (reason) return { skip: `the local statebox Worker cannot start: ${reason}` };
      worker = await testing.startLocalWorker();
      process.stderr.write(`[bench] local statebox Worker (workerd + Docker) at ${worker.url}\n`);
    }
    const provider = new adapter.CloudflareProvider({
      url: worker.url,
      token: worker.token,
      requestTimeoutMs: 120_000,
      lifecycleTimeoutMs: 900_000,
    });
    // The raw SDK side, shared with the comparison (`--compare`): src/raw-sdk/cloudflare.ts.
    const callDirect = directCaller(worker.url, worker.token);
    return {
      provider,
      async baselines({ sandbox, progress: say }) {
        const baseline = (operation: keyof typeof directDescriptions, withBytes = false): Baseline => ({
          name: `SDK ${operation} in Worker`,
          description: directDescriptions[operation],
          async measure(input) {
            const result = await callDirect(operation, {
              sandboxId: sandbox.id,
              ...(withBytes ? { bytes: input!.length } : {}),
            });
            if (result.backupBytes !== undefined)
              say(`  direct ${operation}: backup of /workspace is ${result.backupBytes} bytes`);
            return result.ms;
          },
        });
        return {
          create: baseline('create'),
          exec: baseline('exec'),
          write: baseline('write', true),
          read: baseline('read'),
          suspend: baseline('suspend'),
          resume: baseline('resume'),
          fork: baseline('fork'),
          destroy: baseline('destroy'),
        };
      },
      async close() {
        await worker.stop();
      },
    };
  },
};
