import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LocalWorkerConfig } from './main.js';

const execFileAsync = promisify(execFile);

export const LOCAL_IMAGE = 'statebox/cloudflare-sandbox:0.12.10';
export const LOCAL_EGRESS_IMAGE = 'statebox/cloudflare-egress:local';

export type LocalWorker = {
  /** Base URL of the Worker, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The bearer token the Worker was started with. */
  token: string;
  /** Stops the Worker and its containers. Also happens when this process exits. */
  stop(): Promise<void>;
};

export type LocalWorkerOptions = {
  image?: string;
  egressImage?: string;
  /** Worker variables (`.dev.vars`), e.g. `{ STATEBOX_MAX_BACKUP_BYTES: '1048576' }`. */
  vars?: Record<string, string>;
  /** How long to wait for the Worker to answer. Default 180 s. */
  startTimeoutMs?: number;
};

// dist/index.js and dist/testing.js sit beside dist/local-worker.js; the Worker's source ships in src/worker.
const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = existsSync(join(here, 'local-worker.js')) ? resolve(here, '..') : resolve(here, '../..');
const mainScript = join(packageRoot, 'dist', 'local-worker.js');
const workerEntry = join(packageRoot, 'src', 'worker', 'index.ts');

/**
 * Why the local Worker cannot start here, or undefined when it can: Node 22.12+ (wrangler's floor), a
 * Docker Engine that answers, the two images from scripts/build-images.sh, and the built package.
 */
export async function localWorkerSkipReason(options: LocalWorkerOptions = {}): Promise<string | undefined> {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major! < 22 || (major === 22 && minor! < 12)) {
    return `wrangler needs Node 22.12 or later (this is ${process.versions.node}); run through npx -y pnpm@10 exec`;
  }
  try {
    await execFileAsync('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 20_000 });
  } catch {
    return `no Docker Engine answers at ${process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'} (run bash .ci/docker.sh)`;
  }
  for (const image of [options.image ?? LOCAL_IMAGE, options.egressImage ?? LOCAL_EGRESS_IMAGE]) {
    try {
      await execFileAsync('docker', ['image', 'inspect', image], { timeout: 20_000 });
    } catch {
      return `image ${image} is missing (build it offline: bash packages/cloudflare/scripts/build-images.sh)`;
    }
  }
  if (!existsSync(mainScript)) return `${mainScript} is missing: build the package (npx -y pnpm@10 build)`;
  return undefined;
}

/** Starts the statebox Worker in local workerd with containers in local Docker (a child process). */
export async function startLocalWorker(options: LocalWorkerOptions = {}): Promise<LocalWorker> {
  const token = randomBytes(24).toString('base64url');
  const config: LocalWorkerConfig = {
    token,
    image: options.image ?? LOCAL_IMAGE,
    egressImage: options.egressImage ?? LOCAL_EGRESS_IMAGE,
    entry: workerEntry,
    vars: options.vars ?? {},
  };
  const child = spawn(process.execPath, [mainScript], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, STATEBOX_LOCAL_WORKER_CONFIG: JSON.stringify(config) },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  const url = await new Promise<string>((resolvePromise, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `the local statebox Worker did not start within ${options.startTimeoutMs ?? 180_000} ms: ${stderr}`,
        ),
      );
    }, options.startTimeoutMs ?? 180_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      const line = stdout.split('\n').find((candidate) => candidate.startsWith('{"url"'));
      if (line) {
        clearTimeout(timer);
        resolvePromise((JSON.parse(line) as { url: string }).url);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the local statebox Worker exited with code ${code} before it was ready: ${stderr}`));
    });
  });
  // Do not keep this process alive for the Worker: when it exits, the child sees stdin close and stops.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void }).unref?.();
  }
  return {
    url,
    token,
    stop: () =>
      new Promise<void>((resolvePromise) => {
        if (child.exitCode !== null) return resolvePromise();
        child.ref();
        child.once('exit', () => resolvePromise());
        child.stdin.end();
        setTimeout(() => child.kill('SIGKILL'), 60_000).unref();
      }),
  };
}
