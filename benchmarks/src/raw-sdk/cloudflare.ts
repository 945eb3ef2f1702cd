import type { RawSdk } from './types.ts';

export const CLOUDFLARE_SDK = '@cloudflare/sandbox 0.12.10 inside the Worker';

/** What a `POST /v1/direct/<operation>` answers: the duration timed inside the Worker. */
export type DirectResult = { ms: number; backupBytes?: number };

/**
 * Cloudflare's SDK runs only inside a Worker (it drives the Sandbox Durable Object through its
 * binding), so its raw side is the statebox Worker's `POST /v1/direct/<operation>`: the same operation
 * done straight with `@cloudflare/sandbox` there, timed there (packages/cloudflare/src/worker/direct.ts).
 */
export function directCaller(url: string, token: string) {
  return async (operation: string, body: Record<string, unknown>): Promise<DirectResult> => {
    const response = await fetch(`${url}/v1/direct/${operation}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`direct ${operation}: ${response.status} ${await response.text()}`);
    return (await response.json()) as DirectResult;
  };
}

/** What each direct operation does, for the baselines' descriptions. */
export const directDescriptions = {
  create: 'in the Worker: getSandbox(new id).exec("true") (container start; destroyed after, untimed)',
  exec: 'in the Worker: sandbox.exec("true")',
  write: "in the Worker: sandbox.writeFile(path, base64, { encoding: 'base64' }) of the same size",
  read: 'in the Worker: sandbox.readFileStream(path) of that file',
  suspend: "in the Worker: createBackup({ dir: '/workspace', localBucket: true }) (no registry, no destroy)",
  resume: 'in the Worker: restoreBackup(handle) into a new sandbox id (container start and restore)',
  fork: 'in the Worker: createBackup of the source, then restoreBackup into a new sandbox id',
  destroy: 'in the Worker: sandbox.destroy() of a started scratch sandbox',
} as const;

/**
 * The raw Cloudflare side of the comparison. It acts on the adapter's own sandbox (the same container
 * and workspace), so it needs no sandbox of its own; its durations leave out the HTTP hop from Node.
 */
export function cloudflareRawSdk(url: string, token: string): RawSdk {
  const call = directCaller(url, token);
  const ms = async (operation: string, body: Record<string, unknown>) => (await call(operation, body)).ms;
  // `direct` wants a sandbox id for every operation but create, also for destroy's scratch sandbox.
  let main: string | undefined;
  return {
    sdk: CLOUDFLARE_SDK,
    timedAt:
      'inside the Worker (POST /v1/direct/<op>): no HTTP hop from Node, no registry; destroy is of a started scratch sandbox',
    missing: {},
    open: async (adapterId) => {
      main = adapterId;
      return { id: adapterId, shared: true };
    },
    close: async () => undefined,
    measure: {
      create: () => ms('create', {}),
      exec: (id) => ms('exec', { sandboxId: id }),
      write_1mib: (id, _path, data) => ms('write', { sandboxId: id, bytes: data.length }),
      read_1mib: (id) => ms('read', { sandboxId: id }),
      suspend: (id) => ms('suspend', { sandboxId: id }),
      resume: (id) => ms('resume', { sandboxId: id }),
      fork: async (id) => ({ ms: await ms('fork', { sandboxId: id }), child: null }),
      destroy: () => ms('destroy', { sandboxId: main }),
    },
  };
}
