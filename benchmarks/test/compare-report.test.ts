import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allBackends } from '../src/compare/backends.ts';
import type { CompareResult } from '../src/compare/index.ts';
import { figureText, rawCells } from '../src/compare/text.ts';
import { rawOperations } from '../src/raw-sdk/types.ts';

/**
 * A small `pnpm bench -- --compare` on every backend this machine has, then its page opened in a real
 * headless Chromium (Debian's `chromium`; .ci/chromium.sh installs it): the page renders, shows every
 * figure of the JSON, fetches nothing, and every backend is either measured or named with its reason.
 * It asserts nothing about durations.
 */

const chromium = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (path): path is string => !!path && existsSync(path),
);
// In CI a missing browser is a failure, not a skip: .ci/chromium.sh is supposed to have installed it.
const skipReason =
  chromium || process.env.CI
    ? undefined
    : 'no chromium binary (apt-get install chromium, or set CHROMIUM_PATH)';

describe.skipIf(skipReason !== undefined)(
  `pnpm bench -- --compare, page in headless chromium${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let scratch: string;
    let resultsDir: string;
    let run: ReturnType<typeof spawnSync>;
    let result: CompareResult;
    let browser: Browser | undefined;

    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), 'statebox-compare-test-'));
      resultsDir = join(scratch, 'results');
      run = spawnSync(
        process.execPath,
        [
          join(import.meta.dirname, '..', 'run.ts'),
          '--compare',
          '--size',
          'small',
          '--rounds',
          '1',
          '--exec-runs',
          '5',
          '--idle-ms',
          '300',
          '--home',
          join(scratch, 'home'),
          '--results-dir',
          resultsDir,
        ],
        { encoding: 'utf8', timeout: 420_000 },
      );
      const file = (await readdir(resultsDir).catch(() => [])).find((name) =>
        /^compare-.*\.json$/.test(name),
      );
      if (file) result = JSON.parse(await readFile(join(resultsDir, file), 'utf8'));
    }, 450_000);

    afterAll(async () => {
      await browser?.close();
      await rm(scratch, { recursive: true, force: true });
    });

    it('exits 0, prints the tables and writes the JSON and the page', async () => {
      expect(run.error).toBeUndefined();
      expect(run.status, String(run.stderr).slice(-3000)).toBe(0);
      expect(String(run.stdout)).toMatch(/\| operation \(median\) \|/);
      expect(String(run.stdout)).toMatch(/\| seed scenario \|/);
      const files = await readdir(resultsDir);
      expect(files).toEqual(expect.arrayContaining(['latest-compare.json', 'latest-compare.html']));
      expect(result.ok).toBe(true);
    });

    it('measures every backend it can and names the reason for each one it cannot', () => {
      expect(result.backends.map((backend) => backend.name).sort()).toEqual([...allBackends].sort());
      for (const backend of result.backends)
        if (!backend.available) expect(backend.reason.length, backend.name).toBeGreaterThan(20);
      const available = result.backends.filter((backend) => backend.available).map((backend) => backend.name);
      expect(available).toContain('local');
      expect(result.lifecycle.map((lane) => lane.backend)).toEqual(available);
      for (const lane of result.lifecycle) {
        expect(lane.error, lane.backend).toBeNull();
        expect(lane.checks.length, lane.backend).toBeGreaterThan(0);
        expect(
          lane.checks.every((check) => check.ok),
          lane.backend,
        ).toBe(true);
        for (const { id } of result.operations)
          expect(lane.figures[id as keyof typeof lane.figures], `${lane.backend} ${id}`).toBeDefined();
      }
      // statebox's own backends all suspend and fork; the peer has no suspend and says so.
      const peer = result.lifecycle.find((lane) => lane.backend === 'tanstack/local-process');
      if (peer) expect(peer.figures.suspend).toEqual({ unsupported: expect.stringMatching(/no suspend/) });
    });

    it('measures each cloud backend with a raw SDK beside its adapter, in the same rounds', () => {
      const withRaw = result.backends.filter((backend) => backend.available && backend.rawSdk !== null);
      expect(result.raw.map((raw) => raw.backend)).toEqual(withRaw.map((backend) => backend.name));
      for (const raw of result.raw) {
        expect(raw.error, raw.backend).toBeNull();
        expect(raw.rows.map((row) => row.operation)).toEqual(rawOperations.map(([id]) => id));
        const lane = result.lifecycle.find((item) => item.backend === raw.backend)!;
        for (const row of raw.rows) {
          // One round: one sample a side (exec: --exec-runs a side), the adapter's from its lifecycle lane.
          expect(row.adapterSamples.length, `${raw.backend} ${row.operation}`).toBe(
            row.operation === 'exec' ? 5 : 1,
          );
          if (row.noRawEquivalent !== null) continue;
          expect(row.rawSamples.length, `${raw.backend} ${row.operation}`).toBe(row.adapterSamples.length);
          expect(row.overheadMs!, `${raw.backend} ${row.operation}`).toBeCloseTo(
            row.adapterMs! - row.rawMs!,
            2,
          );
        }
        const create = lane.figures.create;
        expect(create && 'value' in create ? create.value : null).toBe(raw.rows[0]!.adapterMs);
      }
    });

    it('ran the seed scenario on each backend, the morning in a new process', () => {
      expect(result.seed.map((seed) => seed.backend)).toEqual(result.lifecycle.map((lane) => lane.backend));
      for (const seed of result.seed) {
        expect(seed.error, seed.backend).toBeNull();
        const morning = seed.morning!;
        expect(morning.firstUsefulMs, seed.backend).toBeGreaterThan(0);
        expect(morning.survived.files.kept, `${seed.backend}: ${morning.survived.files.detail}`).toBe(true);
        expect(morning.survived.tool.kept, `${seed.backend}: ${morning.survived.tool.detail}`).toBe(true);
        if (seed.backend === 'local' || seed.backend === 'docker') {
          expect(morning.survived.shell.kept, morning.survived.shell.detail).toBe(true);
          // Both declare filesystem-fidelity suspend: the heartbeat must have stopped.
          expect(morning.survived.processes.kept, morning.survived.processes.detail).toBe(false);
          expect(morning.branchesDiverged).toBe(true);
          expect(morning.threeBranchesMs).toBeGreaterThan(0);
        }
      }
    });

    it('prices the night from the data file, unconfirmed and unknown rates marked', () => {
      const rows = result.costs.rows;
      expect(rows.length).toBeGreaterThan(5);
      const tensorlakeRunning = rows.find(
        (row) => row.backend === 'tensorlake' && row.state === 'kept running',
      )!;
      // 2 cores x $0.05 x 14 h + 4 GB x $0.015 x 14 h (docs.tensorlake.ai, as recorded in the research).
      expect(tensorlakeRunning.usd).toBeCloseTo(2.24, 4);
      expect(rows.find((row) => row.backend === 'tensorlake' && row.usedByStatebox)!.usd).toBeNull();
      expect(rows.filter((row) => !row.confirmed).length).toBeGreaterThan(0);
    });

    it('renders in headless chromium with every figure, fetching nothing', async () => {
      browser = await puppeteer.launch({
        executablePath: chromium!,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      });
      const page = await browser.newPage();
      const requests: string[] = [];
      await page.setRequestInterception(true);
      page.on('request', (request) => {
        requests.push(request.url());
        if (request.url().startsWith('file:')) void request.continue();
        else void request.abort();
      });
      await page.setViewport({ width: 1200, height: 900 });
      const url = pathToFileURL(join(resultsDir, 'latest-compare.html')).href;
      const response = await page.goto(url, { waitUntil: 'load' });
      expect(response?.ok()).toBe(true);
      expect(requests).toEqual([url]);
      expect(await page.title()).toContain(result.runId);

      // Every numeric figure of the JSON is in its table cell, as the page formats it.
      const cells = await page.$$eval('td[data-figure]', (nodes) =>
        Object.fromEntries(nodes.map((node) => [node.getAttribute('data-figure'), node.textContent])),
      );
      let numeric = 0;
      for (const lane of result.lifecycle)
        for (const [id, figure] of Object.entries(lane.figures)) {
          if ('unsupported' in figure) continue;
          numeric++;
          expect(cells[`${lane.backend}:${id}`], `${lane.backend}:${id}`).toBe(figureText(figure));
        }
      expect(Object.keys(cells).length).toBe(numeric);

      // One chart per operation, each with a laid-out bar per backend that has the figure.
      const charts = await page.$$eval('figure.chart svg', (svgs) =>
        svgs.map((svg) => ({
          label: svg.getAttribute('aria-label'),
          bars: [...svg.querySelectorAll('rect')].filter((rect) => rect.getBoundingClientRect().width > 0)
            .length,
        })),
      );
      expect(charts.map((chart) => chart.label)).toEqual(
        result.operations.map((operation) => operation.label),
      );
      expect(charts.every((chart) => chart.bars >= 1)).toBe(true);
      // The raw-SDK section: per cloud backend, every row's statebox, raw and overhead cells as formatted.
      const rawCellsShown = await page.$$eval('td[data-raw]', (nodes) =>
        Object.fromEntries(nodes.map((node) => [node.getAttribute('data-raw'), node.textContent])),
      );
      const sections = await page.$$eval('section.raw', (nodes) =>
        nodes.map((node) => node.getAttribute('data-backend')),
      );
      expect(sections).toEqual(result.raw.map((raw) => raw.backend));
      for (const raw of result.raw)
        for (const row of raw.rows) {
          const cells = rawCells(row);
          const key = `${raw.backend}:${row.operation}`;
          expect(rawCellsShown[`${key}:adapter`], key).toBe(cells.adapter);
          expect(rawCellsShown[`${key}:raw`], key).toBe(
            row.noRawEquivalent === null ? cells.raw : `${cells.raw}: ${row.noRawEquivalent}`,
          );
          expect(rawCellsShown[`${key}:overheadMs`], key).toBe(cells.overheadMs);
          expect(rawCellsShown[`${key}:overheadPct`], key).toBe(cells.overheadPct);
        }
      expect(Object.keys(rawCellsShown).length).toBe(result.raw.length * rawOperations.length * 4);

      const timelines = await page.$$eval('svg[aria-label^="timeline "] rect', (rects) => rects.length);
      expect(timelines).toBeGreaterThanOrEqual(result.seed.length * 5);

      const text = await page.$eval('body', (body) => body.textContent ?? '');
      for (const backend of result.backends)
        if (!backend.available) expect(text).toContain(`${backend.name} (${backend.library}): not available`);
      expect(text).toContain('What the night costs');
      expect(text).toContain('$2.24');
      // Sources are shown as written in the data file, with the date they were read.
      expect(text).toContain('docs.tensorlake.ai/faqs/pricing-limits-faq (On-Demand) (read 2026-11-29)');
      expect(text).toMatch(/unconfirmed/);
      expect(text).toContain(result.machine.commit ?? 'unknown');

      // Readable as a screenshot: a full-page PNG of the rendered page.
      const shot = join(resultsDir, 'latest-compare.png');
      await page.screenshot({ path: shot, fullPage: true });
      const size = await page.$eval('html', (html) => html.scrollHeight);
      expect(size).toBeGreaterThan(1500);
      expect((await stat(shot)).size).toBeGreaterThan(50_000);
    }, 120_000);
  },
);
