import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DockerClient, parseDockerHost } from './client.js';
import { resolveOptions } from './options.js';

/**
 * `@statebox/docker/testing`: the one place where this package's tests, the runner's tests and the
 * benchmarks find out whether a Docker Engine is there to test against. Not part of the user API.
 */

const run = promisify(execFile);

/** The registry-free busybox image the adapter's suites run on (built by scripts/build-test-image.sh). */
export const TEST_IMAGE = 'statebox/busybox:test';
/** The Debian image with bash and GNU tools that .ci/docker.sh builds (scripts/build-debian-image.sh). */
export const DEBIAN_IMAGE = 'statebox/debian:bookworm';

/** The daemon address the provider would use: `DOCKER_HOST`, or the default socket. */
export function dockerHost(env: NodeJS.ProcessEnv = process.env): string {
  return resolveOptions({}, env).host;
}

/** Why no daemon answers `GET /_ping` at `host`, or undefined when one does. */
export async function pingDocker(host: string = dockerHost()): Promise<string | undefined> {
  let client: DockerClient;
  try {
    client = new DockerClient(parseDockerHost(host));
  } catch (error) {
    return (error as Error).message;
  }
  try {
    await client.request('GET', '/_ping', { signal: AbortSignal.timeout(5000) });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    client.close();
  }
}

export type SkipOptions = {
  /** The image the suite needs. `TEST_IMAGE` is built when missing (about a second, nothing pulled). */
  image?: string;
  /** Whether the suite uses the default root-owned state directory (default true). */
  root?: boolean;
};

/**
 * Why Docker-backed suites cannot run here, or false when they can: no daemon, the image missing (and not
 * buildable here), or not root when the suite needs it. Name it in the skipped test's title.
 */
export async function dockerSkipReason(options: SkipOptions = {}): Promise<string | false> {
  const host = dockerHost();
  const image = options.image ?? TEST_IMAGE;
  const unreachable = await pingDocker(host);
  if (unreachable) return `no Docker daemon at ${host} (${unreachable}): start dockerd or set DOCKER_HOST`;
  const client = new DockerClient(parseDockerHost(host));
  try {
    const found = await client.request('GET', `/images/${image}/json`, { accept: [404] });
    if (found.status === 404) {
      if (image !== TEST_IMAGE) {
        const script = image === DEBIAN_IMAGE ? 'build-debian-image.sh' : undefined;
        return `no ${image} image${script ? ` (build it with packages/docker/scripts/${script})` : ''}`;
      }
      const script = fileURLToPath(new URL('../scripts/build-test-image.sh', import.meta.url));
      await run('bash', [script, TEST_IMAGE], { env: { ...process.env, DOCKER_HOST: host } });
    }
  } catch (error) {
    return `could not build ${image}: ${(error as Error).message}`;
  } finally {
    client.close();
  }
  if ((options.root ?? true) && process.getuid?.() !== 0)
    return 'the docker provider keeps workspace layers in a root-owned state directory; run as root';
  return false;
}
