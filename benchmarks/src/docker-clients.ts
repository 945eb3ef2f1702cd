import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { createStatebox, type Sandbox } from '@statebox/core';
import Modem from 'docker-modem';
import type { Baseline, Scenario } from './scenarios.ts';
import { time } from './stats.ts';
import { SCRATCH_DIR, WORKSPACE } from './workspace.ts';

/**
 * The Engine-client comparison that issue 8 asks for: the docker provider over docker-modem (the HTTP
 * layer every dockerode call goes through: `docker.getContainer(id).exec()` is `modem.dial({...})`)
 * against the same provider over its own `node:http` client, in one run, on the same daemon, state
 * directory and sandboxes. The "statebox" column is docker-modem; the "baseline" column is our client,
 * so a speedup above 1 means docker-modem is faster. Run with `pnpm bench -- --provider docker-clients`.
 *
 * Only the transport differs: requests, paths and bodies are the provider's, and a refused request
 * becomes the same `DockerApiError`, so both providers do exactly the same work. `squash` (past 100
 * image layers, never reached here) stays on our client.
 */

type Testing = typeof import('@statebox/docker/testing');
type Endpoint = Parameters<Parameters<Testing['dockerWithClient']>[1]>[0];
type Options = NonNullable<Parameters<Testing['DockerClient']['prototype']['request']>[2]>;

/** Every status is handed back to us, so that status handling is the provider's own, as with our client. */
const anyStatus = new Proxy({}, { get: () => true });

function modemClientClass(testing: Testing) {
  const { DockerApiError, DockerClient, DockerConnectionError, ResponseTooLargeError } = testing;
  const errorMessage = (buffer: Buffer) => {
    const text = buffer.toString('utf8').trim();
    try {
      const parsed = JSON.parse(text) as { message?: string };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {}
    return text || 'empty response';
  };
  return class ModemClient extends DockerClient {
    readonly modem: Modem;
    constructor(endpoint: Endpoint) {
      super(endpoint);
      this.modem = new Modem('socketPath' in endpoint ? { socketPath: endpoint.socketPath } : endpoint);
    }

    #dial<T>(options: Modem.DialOptions & Record<string, unknown>): Promise<T> {
      return new Promise((resolve, reject) =>
        this.modem.dial(options, (error: unknown, result: unknown) => {
          if (error) {
            const code = (error as { code?: string }).code;
            reject(new DockerConnectionError((error as Error).message, code, error));
          } else resolve(result as T);
        }),
      );
    }

    /** One request through docker-modem, status and body handed back as they came. */
    async #send(method: string, path: string, options: Options) {
      const query = Object.fromEntries(
        Object.entries(options.query ?? {})
          .filter(([, value]) => value !== undefined)
          .map(([key, value]) => [key, String(value)]),
      );
      const hasQuery = Object.keys(query).length > 0;
      const raw =
        options.raw && Buffer.from(options.raw.buffer, options.raw.byteOffset, options.raw.byteLength);
      const response = await this.#dial<IncomingMessage>({
        path: hasQuery ? `${path}?` : path,
        method,
        // dockerode's convention: `_query` goes to the URL, `_body` is the JSON body.
        options: hasQuery ? { _query: query, _body: options.body ?? {} } : (options.body ?? {}),
        ...(raw && { file: raw }),
        ...(options.headers && { headers: options.headers }),
        ...(options.signal && { abortSignal: options.signal }),
        isStream: true,
        statusCodes: anyStatus,
      });
      const chunks: Buffer[] = [];
      let received = 0;
      for await (const chunk of response as AsyncIterable<Buffer>) {
        received += chunk.byteLength;
        if (options.maxBytes !== undefined && received > options.maxBytes) {
          response.destroy();
          throw new ResponseTooLargeError(received, path);
        }
        chunks.push(chunk);
      }
      return { response, buffer: Buffer.concat(chunks) };
    }

    override async request<T = unknown>(method: string, path: string, options: Options = {}) {
      const { response, buffer } = await this.#send(method, path, options);
      const status = response.statusCode ?? 0;
      if (status >= 400 && !options.accept?.includes(status))
        throw new DockerApiError(status, errorMessage(buffer), path);
      if (options.binary)
        return { status, body: new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) as T };
      const isJson = (response.headers['content-type'] ?? '').includes('json');
      return {
        status,
        body: (isJson && buffer.length > 0 ? JSON.parse(buffer.toString('utf8')) : buffer) as T,
      };
    }

    override async hijack(path: string, body: unknown): Promise<Socket> {
      return await this.#dial<Socket>({
        path,
        method: 'POST',
        options: body as Record<string, unknown>,
        hijack: true,
        statusCodes: { 101: true, 200: true },
      });
    }

    override async head(path: string, query: Options['query'], signal?: AbortSignal) {
      const { response } = await this.#send('HEAD', path, {
        ...(query && { query }),
        ...(signal && { signal }),
      });
      return { status: response.statusCode ?? 0, headers: response.headers };
    }
  };
}

export const dockerClientsScenario: Scenario = {
  provider: 'docker-clients',
  targets: [],
  async open({ home, runId, image: requestedImage }) {
    let testing: Testing;
    let adapter: typeof import('@statebox/docker');
    try {
      adapter = await import('@statebox/docker');
      testing = await import('@statebox/docker/testing');
    } catch (error) {
      return {
        skip: `@statebox/docker is not built (${(error as Error).message.split('\n')[0]}): run pnpm build.`,
      };
    }
    const host = testing.dockerHost();
    const unreachable = await testing.pingDocker(host);
    if (unreachable)
      return {
        skip: `no Docker daemon answered at ${host} (${unreachable}): start dockerd or set DOCKER_HOST.`,
      };
    const image = requestedImage ?? (process.env.STATEBOX_DOCKER_IMAGE?.trim() || testing.DEBIAN_IMAGE);
    const options = { stateDir: `${home}/docker`, image };
    const ModemClient = modemClientClass(testing);
    const provider = testing.dockerWithClient(options, (endpoint) => new ModemClient(endpoint));
    const own = adapter.docker(options);
    const ownStatebox = createStatebox({ provider: own });
    const made = new Set<Sandbox>();
    const labels = { 'statebox-bench': runId };
    let lastFork: Sandbox | undefined;
    let forks = 0;
    return {
      provider,
      async baselines({ sandbox }) {
        const main = await ownStatebox.get(sandbox.id);
        const ours = (name: string, description: string, measure: Baseline['measure']): Baseline => ({
          name: `own client: ${name}`,
          description: `the same operation through the docker provider on its own node:http client: ${description}`,
          measure,
        });
        return {
          create: ours('create', 'create() of an empty sandbox (destroyed after, untimed)', async () => {
            let created: Sandbox | undefined;
            const ms = await time(async () => {
              created = await ownStatebox.create({ labels });
            });
            await created!.destroy();
            return ms;
          }),
          exec: ours('exec', "exec('true') in the benchmark's sandbox", () => time(() => main.exec('true'))),
          write: ours('writeFile', 'writeFile of the same bytes to /tmp/bench-own', (input) =>
            time(() => main.writeFile('/tmp/bench-own', input!)),
          ),
          read: ours('readFile', 'readFile of /tmp/bench-own', (input) =>
            time(async () => {
              const read = await main.readFile('/tmp/bench-own');
              if (read.byteLength !== input!.byteLength)
                throw new Error(`own client read ${read.byteLength} bytes`);
            }),
          ),
          suspend: ours('suspend', "suspend() of the benchmark's sandbox", () => time(() => main.suspend())),
          resume: ours('resume', "resume() of the benchmark's sandbox", () => time(() => main.resume())),
          fork: ours(
            'fork',
            'fork() of the running sandbox after 1 MiB of fresh writes (untimed)',
            async () => {
              await main.writeFile(
                `${WORKSPACE}/${SCRATCH_DIR}/own-${forks++}.bin`,
                new Uint8Array(1024 * 1024).fill(forks),
              );
              const ms = await time(async () => {
                lastFork = await main.fork({ labels });
              });
              made.add(lastFork!);
              return ms;
            },
          ),
          destroy: ours('destroy', 'destroy() of the fork just made', async () => {
            const child = lastFork!;
            made.delete(child);
            return await time(() => child.destroy());
          }),
        };
      },
      async close() {
        for (const child of made) await child.destroy().catch(() => undefined);
        await own.close();
      },
    };
  },
};
