import { randomBytes } from 'node:crypto';
import { median, round, time } from '../stats.ts';
import { type Box, type Driver, isUnsupported } from './types.ts';

/**
 * The adapter's own overhead, as a ratio: the same operation through statebox and through the
 * vendor's SDK, against the same endpoint (the emulator, or the vendor live), interleaved ABBA.
 * A hook module gives the raw side; any operation it leaves out is not compared.
 */
export type RawSdk = {
  /** What the raw side calls, e.g. `tensorlake 0.5.89 SDK`. */
  sdk: string;
  /** Creates a sandbox as the adapter's create would (same image/size), resolving to the vendor's id. */
  create(): Promise<string>;
  destroy(id: string): Promise<void>;
  /** Runs `command` through a shell and waits for its exit; throws on a non-zero exit. */
  exec?(id: string, command: string): Promise<void>;
  writeFile?(id: string, path: string, data: Uint8Array): Promise<void>;
  readFile?(id: string, path: string): Promise<Uint8Array>;
  suspend?(id: string): Promise<void>;
  resume?(id: string): Promise<void>;
  /** Resolves to the child's id. */
  fork?(id: string): Promise<string>;
};

export type RawRow = { operation: string; adapterMs: number; rawMs: number; ratio: number; samples: number };
export type RawResult = { backend: string; sdk: string; rows: RawRow[]; error: string | null };

const PATH = '/tmp/statebox-raw-compare.bin';

export async function measureRaw(driver: Driver, raw: RawSdk, rounds: number): Promise<RawResult> {
  const series = new Map<string, { adapter: number[]; raw: number[] }>();
  const push = (operation: string, side: 'adapter' | 'raw', ms: number) => {
    const entry = series.get(operation) ?? { adapter: [], raw: [] };
    entry[side].push(ms);
    series.set(operation, entry);
  };
  let box: Box | undefined;
  let rawId: string | undefined;
  let error: string | null = null;
  const data = randomBytes(1024 * 1024);
  try {
    box = await driver.create();
    rawId = await raw.create();
    for (let index = 0; index < rounds; index++) {
      // ABBA: the side that goes first alternates, so drift hits both.
      const pair = async (
        operation: string,
        adapter: () => Promise<number>,
        vendor: () => Promise<number>,
      ) => {
        if (index % 2 === 0) {
          push(operation, 'adapter', await adapter());
          push(operation, 'raw', await vendor());
        } else {
          push(operation, 'raw', await vendor());
          push(operation, 'adapter', await adapter());
        }
      };
      await pair(
        'create',
        async () => {
          let made: Box | undefined;
          const ms = await time(async () => {
            made = await driver.create();
          });
          await driver.destroy(made!);
          return ms;
        },
        async () => {
          let id = '';
          const ms = await time(async () => {
            id = await raw.create();
          });
          await raw.destroy(id);
          return ms;
        },
      );
      if (raw.exec) {
        const exec = raw.exec;
        for (let repeat = 0; repeat < 10; repeat++)
          await pair(
            'exec `true`',
            () => time(() => box!.exec('true')),
            () => time(() => exec(rawId!, 'true')),
          );
      }
      if (raw.writeFile) {
        const write = raw.writeFile;
        await pair(
          'writeFile 1 MiB',
          () => time(() => box!.writeFile(PATH, data)),
          () => time(() => write(rawId!, PATH, data)),
        );
      }
      if (raw.readFile) {
        const read = raw.readFile;
        await pair(
          'readFile 1 MiB',
          () => time(() => box!.readFile(PATH)),
          () => time(() => read(rawId!, PATH)),
        );
      }
      const { suspend, resume, fork } = driver;
      if (raw.suspend && raw.resume && !isUnsupported(suspend) && !isUnsupported(resume)) {
        const [rawSuspend, rawResume] = [raw.suspend, raw.resume];
        await pair(
          'suspend',
          () => time(() => suspend(box!)),
          () => time(() => rawSuspend(rawId!)),
        );
        await pair(
          'resume',
          () => time(() => resume(box!)),
          () => time(() => rawResume(rawId!)),
        );
      }
      if (raw.fork && !isUnsupported(fork)) {
        const rawFork = raw.fork;
        await pair(
          'fork',
          async () => {
            let child: Box | undefined;
            const ms = await time(async () => {
              child = await fork(box!);
            });
            await driver.destroy(child!);
            return ms;
          },
          async () => {
            let child = '';
            const ms = await time(async () => {
              child = await rawFork(rawId!);
            });
            await raw.destroy(child);
            return ms;
          },
        );
      }
    }
  } catch (caught) {
    error = (caught as Error).message;
  } finally {
    if (box) await driver.destroy(box).catch(() => undefined);
    if (rawId) await raw.destroy(rawId).catch(() => undefined);
  }
  const rows: RawRow[] = [...series.entries()]
    .filter(([, entry]) => entry.adapter.length > 0 && entry.raw.length > 0)
    .map(([operation, entry]) => {
      const adapterMs = round(median(entry.adapter));
      const rawMs = round(median(entry.raw));
      return { operation, adapterMs, rawMs, ratio: round(adapterMs / rawMs), samples: entry.adapter.length };
    });
  return { backend: driver.name, sdk: raw.sdk, rows, error };
}
