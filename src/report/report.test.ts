// The report from hand-made result files (test/fixtures/report/run): every figure is drawn, a missing
// or malformed file becomes a note, and the page renders in headless chromium with no console errors
// and no network requests. Needs /usr/bin/chromium (apt-get install chromium).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readRunInputs } from './inputs.ts';
import { buildFigures, renderReport } from './report.ts';
import { lineChart, niceTicks } from './svg.ts';
import { launchChromium } from '../util/test-chromium.ts';

const fixtureRun = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'report', 'run');
const FIGURES = [
  'pm-size',
  'calibration',
  'robustness',
  'best-of-n',
  'elo',
  'ood-layers',
  'ood-few-shot',
  'evals',
];

test('niceTicks and lineChart basics', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 97, 5), [20, 40, 60, 80]);
  const svg = lineChart({
    title: 'a <b> & c',
    xLabel: 'x',
    yLabel: 'y',
    series: [
      {
        name: 's',
        points: [
          { x: 0, y: 1, yLow: 0.5, yHigh: 1.5 },
          { x: 1, y: Number.NaN },
          { x: 2, y: 3 },
        ],
      },
    ],
  });
  assert.match(svg, /a &lt;b&gt; &amp; c/);
  assert.equal(
    (svg.match(/<circle /g) ?? []).length,
    3,
    'two data points and one legend marker; NaN dropped',
  );
});

test('missing and malformed files become notes naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-report-'));
  try {
    cpSync(fixtureRun, dir, { recursive: true });
    writeFileSync(join(dir, 'ood.json'), '{"layers": [{"layer": 0, "mahalanobis": "high"}]}');
    writeFileSync(join(dir, 'eval.json'), '{not json');
    rmSync(join(dir, 'rl', 'best-of-n.json'));
    const figures = buildFigures(readRunInputs(dir));
    const byId = Object.fromEntries(figures.map((f) => [f.id, f]));
    assert.equal(byId['ood-layers']!.body, null);
    assert.equal(byId['ood-layers']!.note, 'ood.json: layers[0].mahalanobis must be a number');
    assert.match(byId['evals']!.note!, /^eval\.json: cannot read it as JSON/);
    assert.match(byId['best-of-n']!.note!, /no best-of-n\.json under/);
    assert.ok(byId['calibration']!.body, 'the others are still drawn');
    const html = renderReport(readRunInputs(dir));
    assert.match(html, /Skipped: ood\.json: layers\[0\]\.mahalanobis must be a number/);
    assert.match(html, /4 of 8 figures drawn/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("pm experiment size's size.json: the per-size means when it has them, its rows in older files", () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-report-size-'));
  try {
    const row = (name: string, parameters: number, goldAccuracy: number) => ({
      name,
      parameters,
      accuracy: 0.6,
      goldAccuracy,
    });
    const rows = [
      row('size-small', 5e4, 0.77),
      row('size-small-r1', 5e4, 0.79),
      row('size-large', 7e5, 0.85),
    ];
    const points = [
      { name: 'small', params: 5e4, accuracy: 0.78 },
      { name: 'large', params: 7e5, accuracy: 0.85 },
    ];
    writeFileSync(join(dir, 'size.json'), JSON.stringify({ experiment: 'size', rows, points }));
    const read = (): unknown => {
      const got = readRunInputs(dir).pmSizes;
      return 'data' in got ? got.data : got;
    };
    assert.deepEqual(read(), points);
    writeFileSync(join(dir, 'size.json'), JSON.stringify({ experiment: 'size', rows }));
    assert.deepEqual(read(), [
      { params: 5e4, accuracy: 0.77, name: 'size-small' },
      { params: 5e4, accuracy: 0.79, name: 'size-small-r1' },
      { params: 7e5, accuracy: 0.85, name: 'size-large' },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the robustness figure states the test PM's gain fraction when robustness.json has one", () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-report-robust-'));
  try {
    const points = [0, 0.5, 1].map((s) => ({ sqrtKL: s, trainPM: s, testPM: 0.9 * s }));
    const body = (extra: Record<string, unknown>) => {
      writeFileSync(join(dir, 'robustness.json'), JSON.stringify({ points, ...extra }));
      const f = buildFigures(readRunInputs(dir)).find((x) => x.id === 'robustness')!;
      return f.body ?? `skipped: ${f.note}`;
    };
    assert.match(
      body({ gainFraction: { early: 0.934, atLargestKL: 0.918 } }),
      /each PM in its own units: 0\.93 over the early part, 0\.92 at the largest √KL/,
    );
    assert.doesNotMatch(body({}), /class="fraction"/);
    assert.doesNotMatch(body({ gainFraction: null }), /class="fraction"/);
    assert.match(
      body({ gainFraction: { early: 'x', atLargestKL: 1 } }),
      /gainFraction\.early must be a number/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the report renders in headless chromium: all figures, no console errors, no requests', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-report-'));
  const page = join(dir, 'report.html');
  const inputs = readRunInputs(fixtureRun);
  writeFileSync(page, renderReport(inputs, { title: 'hhkit report: fixture run' }));
  // A fresh profile folder per run (playwright passes it to chromium as --user-data-dir).
  const browser = await launchChromium(join(dir, 'profile'), { width: 1240, height: 900 });
  try {
    const tab = await browser.newPage();
    const problems: string[] = [];
    tab.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    tab.on('requestfailed', (r) => problems.push(`failed request: ${r.url()}`));
    const requests: string[] = [];
    tab.on('request', (r) => requests.push(r.url()));
    await tab.goto(`file://${page}`);
    await tab.waitForLoadState('load');
    assert.deepEqual(problems, []);
    assert.deepEqual(requests, [`file://${page}`], 'the page loads nothing but itself');
    for (const id of FIGURES) {
      const drawn = await tab.getAttribute(`figure#${id}`, 'data-drawn');
      assert.equal(drawn, 'yes', `figure ${id}`);
      if (id === 'evals') {
        assert.equal(await tab.locator('figure#evals table tbody tr').count(), 3);
        continue;
      }
      const box = await tab.locator(`figure#${id} svg`).boundingBox();
      assert.ok(box && box.width > 100 && box.height > 100, `figure ${id} svg has a size`);
      const marks = await tab.locator(`figure#${id} svg path, figure#${id} svg circle`).count();
      assert.ok(marks >= 3, `figure ${id} has ${marks} marks`);
    }
    const shot = join(dir, 'report.png');
    await tab.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000);
    console.log(`screenshot: ${shot}`);
  } finally {
    await browser.close();
  }
});
