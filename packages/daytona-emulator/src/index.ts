import type { SandboxProvider } from '@statebox/core';
import { local } from '@statebox/local';
import { registerLifecycleRoutes } from './routes/lifecycle.js';
import { registerSandboxRoutes } from './routes/sandbox.js';
import { registerToolboxRoutes } from './routes/toolbox.js';
import { createDaytonaServer, type DaytonaServer } from './server.js';
import { DaytonaState, type EmulatorTiming, type SandboxClass } from './state.js';

export type { DaytonaRequestFields, DaytonaServer } from './server.js';
export type { EmulatorTiming, SandboxClass, SandboxRecord, SandboxState } from './state.js';
export { DaytonaState } from './state.js';

export type DaytonaEmulatorOptions = {
  /** The bearer key the emulator accepts. Default `daytona-emulator-key`. */
  apiKey?: string;
  /** The statebox provider whose sandboxes back Daytona's. Default `local()` (state under `STATEBOX_HOME`). */
  provider?: SandboxProvider;
  /**
   * The class every sandbox gets: `'linux-vm'` (default) can be paused, `'container'` cannot (pause
   * answers 400), as on Daytona.
   */
  sandboxClass?: SandboxClass;
  /** Transition and interval timing; see `EmulatorTiming`. */
  timing?: Partial<EmulatorTiming>;
  /** How often the auto-stop/auto-archive timers look at the sandboxes. Default a tenth of a minute, at most 1 s. */
  tickMs?: number;
  /** Let the process exit while the emulator runs (for an emulator started on demand by a demo). */
  unref?: boolean;
};

export type DaytonaEmulator = {
  /** `http://127.0.0.1:<port>/api`, the SDK's `apiUrl`. */
  apiUrl: string;
  apiKey: string;
  /** What the SDK is told to use as `target`. */
  target: string;
  server: DaytonaServer;
  state: DaytonaState;
  close(): Promise<void>;
};

/**
 * Starts a loopback Daytona on a free port: the `/api/sandbox` resource with its asynchronous state machine
 * (start, stop, pause, archive, fork, the idle timers) and the toolbox at `/toolbox/{id}` for process and
 * file calls, each sandbox backed by a real statebox sandbox.
 */
export async function startDaytonaEmulator(options: DaytonaEmulatorOptions = {}): Promise<DaytonaEmulator> {
  const apiKey = options.apiKey ?? 'daytona-emulator-key';
  const timing: EmulatorTiming = {
    transitionMs: 20,
    archiveRestoreMs: 400,
    minuteMs: 60_000,
    ...options.timing,
  };
  const server = createDaytonaServer(apiKey);
  const state = new DaytonaState({
    provider: options.provider ?? local(),
    timing,
    sandboxClass: options.sandboxClass ?? 'linux-vm',
    organizationId: 'org-emulator',
    toolboxProxyUrl: () => `${server.url}/toolbox`,
  });
  // The SDK first tries Daytona's socket.io state channel; the emulator has none, so the SDK falls back to
  // polling `GET /api/sandbox/{id}` (the path every test exercises). Answer it plainly, not as an unknown route.
  server.get('/api/socket.io/', (c) => c.json({ statusCode: 404, message: 'no event channel' }, 404));
  registerSandboxRoutes(server, state);
  registerLifecycleRoutes(server, state);
  registerToolboxRoutes(server, state);
  if (options.unref) server.unref();
  const url = await server.listen();
  const tickMs = options.tickMs ?? Math.min(1000, Math.max(10, timing.minuteMs / 10));
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    state.tick().finally(() => {
      ticking = false;
    });
  }, tickMs);
  timer.unref();
  return {
    apiUrl: `${url}/api`,
    apiKey,
    target: 'us',
    server,
    state,
    close: async () => {
      clearInterval(timer);
      await server.close();
      await state.close();
    },
  };
}
