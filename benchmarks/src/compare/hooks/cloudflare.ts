import { cloudflareRawSdk } from '../../raw-sdk/cloudflare.ts';
import type { BackendHook } from '../backends.ts';

/**
 * Cloudflare in the comparison: the statebox Worker in local workerd with the real Sandbox Durable Object
 * and real Docker containers (`@statebox/cloudflare/testing`), or a deployed Worker with
 * `--live cloudflare`, `STATEBOX_CLOUDFLARE_URL` and `STATEBOX_CLOUDFLARE_TOKEN`. Local figures include
 * real container starts and squashfs backups, but not Cloudflare's network, placement or R2 latency.
 * The raw side is `@cloudflare/sandbox` inside the Worker (`POST /v1/direct/<op>`, timed there;
 * `src/raw-sdk/cloudflare.ts`, shared with `--provider cloudflare`).
 */
export const open: BackendHook['open'] = async (context) => {
  if (context.live) {
    const url = process.env.STATEBOX_CLOUDFLARE_URL?.trim();
    const token = process.env.STATEBOX_CLOUDFLARE_TOKEN?.trim();
    if (!url || !token)
      return { unavailable: '--live cloudflare needs STATEBOX_CLOUDFLARE_URL and STATEBOX_CLOUDFLARE_TOKEN' };
    return {
      source: 'live',
      config: { provider: 'cloudflare', url, token },
      raw: cloudflareRawSdk(url, token),
      close: async () => undefined,
    };
  }
  const { localWorkerSkipReason, startLocalWorker } = await import('@statebox/cloudflare/testing');
  const reason = await localWorkerSkipReason();
  if (reason) return { unavailable: `the local Worker cannot start: ${reason}` };
  context.progress('cloudflare: starting the statebox Worker in local workerd (real containers)');
  const worker = await startLocalWorker();
  return {
    source: 'emulator',
    config: { provider: 'cloudflare', url: worker.url, token: worker.token },
    env: { STATEBOX_CLOUDFLARE_URL: worker.url, STATEBOX_CLOUDFLARE_TOKEN: worker.token },
    raw: cloudflareRawSdk(worker.url, worker.token),
    close: () => worker.stop(),
  };
};
