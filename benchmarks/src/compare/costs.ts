import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * The idle-cost model: what one night (the data file's `idleHours`) costs per backend in each state
 * it can be left in, from the published prices in `benchmarks/data/idle-prices.json`. A charge with
 * no published rate makes its state's cost unknown, never zero; a third-party rate marks the cost
 * unconfirmed.
 */

export const PRICES_FILE = join(import.meta.dirname, '..', '..', 'data', 'idle-prices.json');

const charge = z.object({
  item: z.string(),
  rate: z.number().nonnegative().nullable(),
  unit: z.enum(['second', 'hour', 'month']),
  per: z.enum(['vcpu', 'ramGiB', 'diskGB']),
  confirmed: z.boolean(),
  source: z.string(),
  read: z.string(),
});
const pricesSchema = z.object({
  updated: z.string(),
  workload: z.object({
    idleHours: z.number().positive(),
    vcpus: z.number().positive(),
    ramGiB: z.number().positive(),
    diskGB: z.number().positive(),
    why: z.string(),
  }),
  backends: z.array(
    z.object({
      backend: z.string(),
      states: z.array(
        z.object({
          state: z.string(),
          usedByStatebox: z.boolean(),
          keeps: z.string(),
          holds: z.string(),
          charges: z.array(charge),
        }),
      ),
    }),
  ),
});

export type Prices = z.infer<typeof pricesSchema>;

export type CostRow = {
  backend: string;
  state: string;
  usedByStatebox: boolean;
  keeps: string;
  holds: string;
  /** USD for the night; null when a rate is not published. */
  usd: number | null;
  /** The part of the cost whose rates are published (equals `usd` when every rate is). */
  knownUsd: number;
  confirmed: boolean;
  /** How the number was made, and from what. */
  formula: string;
  sources: string[];
};

export type CostModel = { workload: Prices['workload']; updated: string; rows: CostRow[] };

const hoursPerUnit = { second: 1 / 3600, hour: 1, month: 730 } as const;

export async function loadPrices(file = PRICES_FILE): Promise<Prices> {
  const parsed = pricesSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success)
    throw new Error(
      `${file}: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
    );
  return parsed.data;
}

export function idleCosts(prices: Prices, backends?: string[]): CostModel {
  const { workload } = prices;
  const rows: CostRow[] = [];
  for (const entry of prices.backends) {
    if (backends && !backends.includes(entry.backend)) continue;
    for (const state of entry.states) {
      let usd: number | null = 0;
      let known = 0;
      const parts: string[] = [];
      for (const item of state.charges) {
        const quantity = workload[item.per === 'vcpu' ? 'vcpus' : item.per];
        if (item.rate === null) {
          usd = null;
          parts.push(`${item.item}: rate not published`);
          continue;
        }
        const cost = (item.rate * quantity * workload.idleHours) / hoursPerUnit[item.unit];
        known += cost;
        if (usd !== null) usd += cost;
        parts.push(
          `${item.item} $${item.rate}/${item.per}-${item.unit} x ${quantity} x ${workload.idleHours} h = $${cost.toFixed(4)}`,
        );
      }
      rows.push({
        backend: entry.backend,
        state: state.state,
        usedByStatebox: state.usedByStatebox,
        keeps: state.keeps,
        holds: state.holds,
        usd: usd === null ? null : Math.round(usd * 10_000) / 10_000,
        knownUsd: Math.round(known * 10_000) / 10_000,
        confirmed: state.charges.every((item) => item.confirmed),
        formula: parts.length > 0 ? parts.join('; ') : 'no vendor charge (your own machine)',
        sources: state.charges.map(
          (item) => `${item.source} (read ${item.read}${item.confirmed ? '' : ', UNCONFIRMED'})`,
        ),
      });
    }
  }
  return { workload, updated: prices.updated, rows };
}
