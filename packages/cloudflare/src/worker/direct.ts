import { bytesToBase64, sseEvents, WorkerError } from './http.js';

const PART_BYTES = 6 * 1024 * 1024;

import { container, type Env, newSandboxId, WORKDIR } from './sandboxes.js';

export type DirectBody = { sandboxId?: string; bytes?: number };

/**
 * POST /v1/direct/<operation>: the same operation done straight with the SDK inside the Worker, timed
 * here, as the benchmark's baseline beside the statebox figure (which adds the HTTP hop from Node, the
 * registry, the wrapper and the probes). Scratch sandboxes and backups are removed, untimed.
 */
export async function direct(
  env: Env,
  operation: string,
  body: DirectBody,
): Promise<{ ms: number; backupBytes?: number }> {
  const main = body.sandboxId ? container(env, body.sandboxId) : undefined;
  const scratch = () => container(env, `bench${newSandboxId()}`);
  const timed = async (work: () => Promise<unknown>) => {
    const started = performance.now();
    await work();
    return performance.now() - started;
  };
  const backupOf = async () => {
    const handle = await main!.createBackup({ dir: WORKDIR, localBucket: true });
    const size = (await env.BACKUP_BUCKET.head(`backups/${handle.id}/data.sqsh`))?.size ?? 0;
    return { handle, size };
  };
  const drop = (id: string) =>
    env.BACKUP_BUCKET.delete([`backups/${id}/data.sqsh`, `backups/${id}/meta.json`]);
  if (!main && operation !== 'create') throw new WorkerError('bad_request', 'sandboxId is required.');
  switch (operation) {
    case 'create': {
      const sandbox = scratch();
      const ms = await timed(() => sandbox.exec('true'));
      await sandbox.destroy();
      return { ms };
    }
    case 'exec':
      return { ms: await timed(() => main!.exec('true')) };
    case 'write': {
      // One writeFile sends the whole file as one base64 JSON body over Durable Object RPC, which fails
      // for large files; the statebox Worker's 6 MiB parts are the SDK's practical unit, so they are here too.
      const total = body.bytes ?? 0;
      const parts: string[] = [];
      for (let offset = 0; offset < total || parts.length === 0; offset += PART_BYTES) {
        const size = Math.max(0, Math.min(PART_BYTES, total - offset));
        parts.push(bytesToBase64(new Uint8Array(size).map((_, index) => (index * 131) & 255)));
      }
      const ms = await timed(async () => {
        for (const [index, content] of parts.entries()) {
          await main!.writeFile(`/tmp/statebox-direct-io.${index}`, content, { encoding: 'base64' });
        }
      });
      await main!.exec(
        'cat /tmp/statebox-direct-io.* > /tmp/statebox-direct-io && rm -f /tmp/statebox-direct-io.*',
      );
      return { ms };
    }
    case 'read':
      return {
        ms: await timed(async () => {
          const stream = (await main!.readFileStream(
            '/tmp/statebox-direct-io',
          )) as ReadableStream<Uint8Array>;
          // Parsed but not decoded: the statebox route decodes each chunk as it relays it.
          for await (const _event of sseEvents(stream)) {
          }
        }),
      };
    case 'suspend': {
      let result: Awaited<ReturnType<typeof backupOf>> | undefined;
      const ms = await timed(async () => {
        result = await backupOf();
      });
      await drop(result!.handle.id);
      return { ms, backupBytes: result!.size };
    }
    case 'resume':
    case 'fork': {
      const { handle, size } = await backupOf();
      const sandbox = scratch();
      // resume: a new container and the restore; fork: the same after a fresh backup of the source.
      const started = performance.now();
      if (operation === 'fork') await backupOf().then(({ handle: extra }) => drop(extra.id));
      await sandbox.restoreBackup(handle);
      const ms = performance.now() - started;
      await sandbox.destroy();
      await drop(handle.id);
      return { ms, backupBytes: size };
    }
    case 'destroy': {
      const sandbox = scratch();
      await sandbox.exec('true');
      return { ms: await timed(() => sandbox.destroy()) };
    }
    default:
      throw new WorkerError('not_found', `No direct operation ${operation}.`);
  }
}
