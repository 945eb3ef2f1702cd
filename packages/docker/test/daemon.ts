import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_DOCKER_HOST, DockerClient, parseDockerHost } from '../src/index.js';

const run = promisify(execFile);

export const TEST_IMAGE = 'statebox/busybox:test';
export const dockerHost = process.env.DOCKER_HOST?.trim() || DEFAULT_DOCKER_HOST;

/**
 * Why the Docker suites cannot run here, or false when they can. When the daemon answers but the test
 * image is missing, builds it with scripts/build-test-image.sh (about a second, nothing pulled).
 */
export async function dockerSkipReason(): Promise<string | false> {
  const client = new DockerClient(parseDockerHost(dockerHost));
  try {
    await client.request('GET', '/_ping');
  } catch (error) {
    return `no Docker daemon at ${dockerHost} (${(error as Error).message})`;
  }
  try {
    const image = await client.request('GET', `/images/${TEST_IMAGE}/json`, { accept: [404] });
    if (image.status === 404) {
      const script = fileURLToPath(new URL('../scripts/build-test-image.sh', import.meta.url));
      await run('bash', [script, TEST_IMAGE], { env: { ...process.env, DOCKER_HOST: dockerHost } });
    }
  } catch (error) {
    return `could not build ${TEST_IMAGE}: ${(error as Error).message}`;
  } finally {
    client.close();
  }
  if (process.getuid?.() !== 0)
    return 'the docker provider keeps workspace layers in a root-owned state directory; run as root';
  return false;
}
