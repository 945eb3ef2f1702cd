/**
 * `@statebox/cloudflare/testing`: what the adapter's tests, the runner's tests and the benchmarks share.
 * The local Worker runs in workerd (wrangler's `unstable_startWorker`) with the real Sandbox Durable
 * Object, a local R2 bucket and real Docker containers from images built offline.
 */
export {
  LOCAL_EGRESS_IMAGE,
  LOCAL_IMAGE,
  type LocalWorker,
  localWorkerSkipReason,
  startLocalWorker,
} from './local/start.js';

/** `STATEBOX_LIVE=cloudflare` plus URL and token: run against a deployed Worker. Returns why not, or undefined. */
export function liveSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const live = (env.STATEBOX_LIVE ?? '').split(',').map((name) => name.trim());
  if (!live.includes('cloudflare'))
    return 'STATEBOX_LIVE does not include cloudflare (live Cloudflare runs are opt-in)';
  if (!env.STATEBOX_CLOUDFLARE_URL || !env.STATEBOX_CLOUDFLARE_TOKEN) {
    return 'STATEBOX_LIVE=cloudflare needs STATEBOX_CLOUDFLARE_URL and STATEBOX_CLOUDFLARE_TOKEN of a deployed statebox Worker';
  }
  return undefined;
}
