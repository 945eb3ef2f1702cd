/**
 * The local statebox Worker, run in a child process by `startLocalWorker()`: wrangler's
 * `unstable_startWorker` (workerd from npm) with the real `@cloudflare/sandbox` Durable Object, a local
 * R2 bucket, and containers in the local Docker Engine from images built offline
 * (scripts/build-images.sh). Prints one JSON line `{ "url": … }` when ready, and exits (disposing the
 * Worker, which stops its containers) when stdin closes, i.e. when the parent process ends.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDockerProxy } from './docker-proxy.js';

export type LocalWorkerConfig = {
  token: string;
  image: string;
  egressImage: string;
  /** Where the Worker's source is: `src/worker/index.ts` of this package. */
  entry: string;
  /** More Worker variables. */
  vars: Record<string, string>;
};

const DOCKER_WRAPPER = `#!/usr/bin/env bash
# wrangler runs 'docker build --load --provenance=false' (buildx flags; Debian's docker.io has none) and
# 'docker pull' of images that exist only locally (built offline). Drop the flags; skip such pulls.
args=()
for arg in "$@"; do case "$arg" in --load|--provenance=false) ;; *) args+=("$arg") ;; esac; done
if [ "\${args[0]}" = pull ]; then
  image=""; skip=""
  for arg in "\${args[@]:1}"; do
    if [ -n "$skip" ]; then skip=""; continue; fi
    case "$arg" in --platform) skip=1 ;; -*) ;; *) image="$arg" ;; esac
  done
  if [ -n "$image" ] && docker image inspect "$image" >/dev/null 2>&1; then exit 0; fi
fi
exec docker "\${args[@]}"
`;

function wranglerConfig(config: LocalWorkerConfig) {
  return {
    // Unique per instance: workerd names its containers after the Worker, and two local Workers (two
    // test files, two checkouts) must never see each other's containers as their own.
    name: `statebox-local-${process.pid}`,
    main: config.entry,
    compatibility_date: '2026-11-01',
    compatibility_flags: ['nodejs_compat'],
    // A Dockerfile, not an image reference: wrangler logs in to Cloudflare's registry before pulling a
    // reference, and the legacy builder takes a local FROM image as it is.
    containers: [{ class_name: 'Sandbox', image: './Dockerfile', max_instances: 200 }],
    durable_objects: {
      bindings: [
        { name: 'Sandbox', class_name: 'Sandbox' },
        { name: 'STATEBOX_REGISTRY', class_name: 'StateboxRegistry' },
      ],
    },
    migrations: [{ tag: 'v1', new_sqlite_classes: ['Sandbox', 'StateboxRegistry'] }],
    r2_buckets: [{ binding: 'BACKUP_BUCKET', bucket_name: 'statebox-backups' }],
  };
}

function bridgeHasGateway(): boolean {
  const output = execFileSync(
    'docker',
    ['network', 'inspect', 'bridge', '--format', '{{json .IPAM.Config}}'],
    {
      encoding: 'utf8',
    },
  );
  return output.includes('"Gateway"');
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.STATEBOX_LOCAL_WORKER_CONFIG ?? '{}') as LocalWorkerConfig;
  const directory = mkdtempSync(join(tmpdir(), 'statebox-cloudflare-'));
  const cleanup = () => rmSync(directory, { recursive: true, force: true });
  writeFileSync(join(directory, 'wrangler.json'), JSON.stringify(wranglerConfig(config), null, 2));
  writeFileSync(join(directory, 'Dockerfile'), `FROM ${config.image}\n`);
  const vars = { ...config.vars, STATEBOX_TOKEN: config.token };
  writeFileSync(
    join(directory, '.dev.vars'),
    Object.entries(vars)
      .map(([name, value]) => `${name}=${JSON.stringify(value)}\n`)
      .join(''),
  );
  const wrapper = join(directory, 'docker');
  writeFileSync(wrapper, DOCKER_WRAPPER);
  chmodSync(wrapper, 0o755);

  let containerEngine: string | undefined;
  let proxy: Awaited<ReturnType<typeof startDockerProxy>> | undefined;
  if (!bridgeHasGateway()) {
    const socket = join(directory, 'docker.sock');
    const upstream = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
    proxy = await startDockerProxy(socket, upstream);
    containerEngine = `unix://${socket}`;
  }
  process.env.MINIFLARE_CONTAINER_EGRESS_IMAGE = config.egressImage;
  process.env.WRANGLER_SEND_METRICS = 'false';
  process.env.WRANGLER_DOCKER_BIN = wrapper;
  if (containerEngine) process.env.WRANGLER_DOCKER_HOST = containerEngine;

  const { unstable_startWorker } = await import('wrangler');
  const worker = await unstable_startWorker({
    config: join(directory, 'wrangler.json'),
    dev: {
      server: { hostname: '127.0.0.1', port: 0 },
      inspector: false,
      watch: false,
      persist: join(directory, 'state'),
      containerBuildId: `statebox${Date.now().toString(36)}`,
      dockerPath: wrapper,
      ...(containerEngine ? { containerEngine } : {}),
      logLevel: 'warn',
    },
  } as Parameters<typeof unstable_startWorker>[0]);
  await worker.ready;
  const url = (await worker.url).toString().replace(/\/$/, '');
  process.stdout.write(`${JSON.stringify({ url })}\n`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await worker.dispose().catch(() => undefined);
    proxy?.close();
    cleanup();
    process.exit(0);
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    let reason = '';
    for (let cause: unknown = error; cause; cause = (cause as { cause?: unknown }).cause) {
      reason += `${cause instanceof Error ? cause.stack : String(cause)}\n`;
    }
    process.stderr.write(`statebox local Worker failed to start: ${reason}`);
    process.exit(1);
  });
}
