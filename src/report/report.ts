/**
 * `hhkit report`: one self-contained HTML page of a run's results with inline SVG figures — the
 * paper's plots (Bai et al. 2022: PM accuracy vs size, Fig. 5/6; calibration, Fig. 9; reward vs √KL
 * with the robustness fit, Fig. 4; best-of-N; Elo by round, Fig. 1/15; OOD AUROC by layer and the
 * few-shot curve, Fig. 22/23; the NLP / task-accuracy table, Fig. 3). No scripts, fonts or network:
 * it opens offline. Each figure shows the command that produced its data, or a short note when the
 * data is absent or malformed.
 */
import { fitEarlyLine, type LineFit, predictLine } from '../eval/fit.ts';
import { formatInterval } from '../eval/intervals.ts';
import {
  type BestOfNPoint,
  type ClaimIn,
  claimStatus,
  type CalibrationIn,
  type EloRoundsIn,
  type EvalFile,
  type Input,
  type OodIn,
  type PmSizePoint,
  type RobustnessIn,
  type RunInputs,
} from './inputs.ts';
import { escapeXml, lineChart, type Series } from './svg.ts';

export interface Figure {
  id: string;
  title: string;
  /** The figure's markup (<svg> or <table>), or null when skipped. */
  body: string | null;
  note?: string;
  command: string;
  source?: string;
}

const DEFAULT_COMMANDS: Record<keyof RunInputs, string> = {
  claims: 'hhkit demo',
  pmSizes: 'hhkit pm experiment size (or hhkit pm train per model size, then hhkit pm eval on each)',
  calibration: 'hhkit pm eval --model PM_DIR --data WORLD/helpful-test.jsonl',
  robustness: 'hhkit robustness …  (or hhkit ppo: its metrics.jsonl eval lines)',
  bestOfN: 'hhkit best-of-n …',
  elo: 'hhkit elo --db STORE --json (per online round)',
  ood: 'hhkit ood --model CKPT --in WORLD/ood-benign.jsonl --out-of WORLD/ood-harmful.jsonl --out ood.json',
  eval: 'hhkit eval --models base,ppo --world WORLD --out eval.json',
};

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
// Two decimals without a "-0.00".
const fix2 = (v: number) => (Math.abs(v) < 0.005 ? 0 : v).toFixed(2);

function pmSizesFigure(points: PmSizePoint[]): string {
  return lineChart({
    title: 'PM accuracy vs model size',
    xLabel: 'parameters',
    yLabel: 'test accuracy',
    xLog: true,
    series: [{ name: 'preference model', points: points.map((p) => ({ x: p.params, y: p.accuracy })) }],
  });
}

function calibrationFigure(c: CalibrationIn): string {
  const maxGap = Math.max(...c.bins.map((b) => b.meanGap), 1e-6);
  const ideal = Array.from({ length: 41 }, (_, i) => (i / 40) * maxGap * 1.05);
  return lineChart({
    title: `PM calibration${c.ece === undefined ? '' : ` (ECE ${c.ece.toFixed(3)})`}`,
    xLabel: 'score gap |Δ| between the two responses',
    yLabel: 'frequency the higher-scored one was chosen',
    yDomain: [0.4, 1],
    series: [
      {
        name: 'observed (± s.e.)',
        style: 'both',
        points: c.bins.map((b) => ({
          x: b.meanGap,
          y: b.accuracy,
          ...(b.standardError === undefined
            ? {}
            : { yLow: b.accuracy - b.standardError, yHigh: b.accuracy + b.standardError }),
        })),
      },
      {
        name: 'ideal 1/(1+e^−Δ)',
        style: 'line',
        dashed: true,
        color: '#777',
        points: ideal.map((x) => ({ x, y: sigmoid(x) })),
      },
    ],
  });
}

function robustnessFigure(r: RobustnessIn): string {
  const xs = r.points.map((p) => p.sqrtKL);
  let fit: Pick<LineFit, 'slope' | 'intercept'> | null = r.fit ?? null;
  if (!fit && r.points.length >= 3) {
    try {
      fit = fitEarlyLine(
        xs,
        r.points.map((p) => p.trainPm),
      );
    } catch {
      fit = null; // too few early points: draw the curves without the line
    }
  }
  const series: Series[] = [
    {
      name: r.fromPpoLog ? 'PM reward' : 'train PM',
      points: r.points.map((p) => ({ x: p.sqrtKL, y: p.trainPm })),
    },
  ];
  if (r.points.some((p) => p.testPm !== undefined))
    series.push({
      name: 'test PM',
      points: r.points.flatMap((p) => (p.testPm === undefined ? [] : [{ x: p.sqrtKL, y: p.testPm }])),
    });
  // Gold on the PMs' axis when the run mapped it there (its gain in train-PM units, from the start's
  // train-PM score); raw gold scores otherwise (they live on their own 0–1 scale).
  const start = [...r.points].sort((a, b) => a.sqrtKL - b.sqrtKL)[0];
  if (r.points.every((p) => p.goldPm !== undefined) && start)
    series.push({
      name: 'gold (train-PM units)',
      points: r.points.map((p) => ({ x: p.sqrtKL, y: start.trainPm + p.goldPm! })),
    });
  else if (r.points.some((p) => p.gold !== undefined))
    series.push({
      name: 'gold',
      points: r.points.flatMap((p) => (p.gold === undefined ? [] : [{ x: p.sqrtKL, y: p.gold }])),
    });
  if (fit) {
    const x0 = Math.min(0, ...xs);
    const x1 = Math.max(...xs);
    series.push({
      name: `early fit ${fix2(fit.intercept)} + ${fix2(fit.slope)}·√KL`,
      style: 'line',
      dashed: true,
      color: '#777',
      points: [x0, x1].map((x) => ({ x, y: predictLine(fit!, x) })),
    });
  }
  const chart = lineChart({
    title: 'Reward vs √KL(policy ‖ initial)',
    xLabel: '√KL (√nats)',
    yLabel: 'score',
    series,
  });
  const g = r.gainFraction;
  return g
    ? `${chart}\n<p class="fraction">The test PM's gain as a fraction of the train PM's, each PM in its own units: ${fix2(g.early)} over the early part, ${fix2(g.atLargestKL)} at the largest √KL (over-optimisation of the train PM shows as the second below the first, whatever the PMs' scales).</p>`
    : chart;
}

function bestOfNFigure(points: BestOfNPoint[]): string {
  // Best-of-N's KL from the base policy is analytic: log N − (N − 1)/N (Stiennon et al. 2020).
  const x = (p: BestOfNPoint) => p.sqrtKL ?? Math.sqrt(Math.max(0, Math.log(p.n) - (p.n - 1) / p.n));
  const series: Series[] = [];
  if (points.some((p) => p.reward !== undefined))
    series.push({
      name: 'PM reward',
      points: points.flatMap((p) => (p.reward === undefined ? [] : [{ x: x(p), y: p.reward }])),
    });
  if (points.some((p) => p.gold !== undefined))
    series.push({
      name: 'gold',
      points: points.flatMap((p) => (p.gold === undefined ? [] : [{ x: x(p), y: p.gold }])),
    });
  const ns = points.map((p) => p.n).join(', ');
  return lineChart({
    title: `Best-of-N (N = ${ns})`,
    xLabel: '√KL of best-of-N (√nats)',
    yLabel: 'score',
    series,
  });
}

function eloFigure(e: EloRoundsIn): string {
  const models = [...new Set(e.rounds.flatMap((r) => r.models.map((m) => m.model)))];
  const single = e.rounds.length === 1;
  const series: Series[] = models.map((model, k) => ({
    name: model,
    style: single ? 'points' : 'both',
    points: e.rounds.flatMap((r) =>
      r.models
        .filter((m) => m.model === model)
        .map((m) => ({
          // One table: spread the models along x so their intervals do not overlap.
          x: single ? k : r.round,
          y: m.elo,
          ...(m.lower !== undefined && m.upper !== undefined ? { yLow: m.lower, yHigh: m.upper } : {}),
        })),
    ),
  }));
  return lineChart({
    title: 'Elo (with intervals)',
    xLabel: single ? 'model (see legend)' : 'online round',
    yLabel: 'Elo',
    series,
    ...(single ? { xDomain: [-0.5, models.length - 0.5] as [number, number] } : {}),
  });
}

function oodLayerFigure(o: OodIn): string {
  const xs = o.layers.map((l) => l.layer);
  return lineChart({
    title: `OOD detection of harmful requests by layer (${o.pool} pooling)`,
    xLabel: 'layer (0 = embeddings)',
    yLabel: 'AUROC',
    yDomain: [0, 1],
    series: [
      {
        name: 'simplified relative Mahalanobis',
        points: o.layers.map((l) => ({ x: l.layer, y: l.simplifiedRelativeMahalanobis })),
      },
      { name: 'Mahalanobis', points: o.layers.map((l) => ({ x: l.layer, y: l.mahalanobis })) },
      {
        name: 'chance',
        style: 'line',
        dashed: true,
        color: '#999',
        points: [Math.min(...xs), Math.max(...xs)].map((x) => ({ x, y: 0.5 })),
      },
    ],
  });
}

function fewShotFigure(o: OodIn): string {
  const best = o.layers.find((l) => l.layer === o.bestLayer);
  const xs = o.fewShot.map((f) => f.shots);
  const series: Series[] = [
    {
      name: 'few-shot outlier exposure (± s.d.)',
      points: o.fewShot.map((f) => ({ x: f.shots, y: f.mean, yLow: f.mean - f.std, yHigh: f.mean + f.std })),
    },
  ];
  if (best)
    series.push({
      name: 'unsupervised (SRM)',
      style: 'line',
      dashed: true,
      color: '#777',
      points: [Math.min(...xs), Math.max(...xs)].map((x) => ({ x, y: best.simplifiedRelativeMahalanobis })),
    });
  return lineChart({
    title: `Few-shot outlier exposure at layer ${o.bestLayer}`,
    xLabel: 'harmful examples seen (M)',
    yLabel: 'AUROC',
    xLog: true,
    yDomain: [0, 1],
    series,
  });
}

function evalTable(e: EvalFile): string {
  const tasks = [...new Set(e.models.flatMap((m) => Object.keys(m.results)))];
  const cell = (r: EvalFile['models'][number]['results'][string] | undefined) => {
    if (!r) return '<td>—</td>';
    const extra =
      r.accuracyNorm !== undefined
        ? ` <small>(norm ${r.accuracyNorm.toFixed(3)})</small>`
        : r.hh !== undefined
          ? ` <small>(HH ${r.hh.toFixed(3)})</small>`
          : '';
    return `<td>${r.value.toFixed(3)}${extra}</td>`;
  };
  const head = tasks
    .map((t) => {
      const metric = e.models.map((m) => m.results[t]?.metric).find(Boolean) ?? '';
      const n = e.models.map((m) => m.results[t]?.count).find((c) => c !== undefined);
      return `<th>${escapeXml(t)}<br><small>${escapeXml(metric)}${n === undefined ? '' : `, n = ${n}`}</small></th>`;
    })
    .join('');
  const rows = e.models
    .map((m) => `<tr><th>${escapeXml(m.model)}</th>${tasks.map((t) => cell(m.results[t])).join('')}</tr>`)
    .join('\n');
  return `<table class="evals"><thead><tr><th>model</th>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

function figure<T>(
  id: string,
  title: string,
  input: Input<T>,
  key: keyof RunInputs,
  render: (data: T) => string,
  ready: (data: T) => string | null = () => null,
): Figure {
  if (!('data' in input)) return { id, title, body: null, note: input.note, command: DEFAULT_COMMANDS[key] };
  const why = ready(input.data);
  const command = input.command ?? DEFAULT_COMMANDS[key];
  if (why) return { id, title, body: null, note: `${input.file}: ${why}`, command, source: input.file };
  return { id, title, body: render(input.data), command, source: input.file };
}

/** The figures of a run, in the paper's order. */
export function buildFigures(inputs: RunInputs): Figure[] {
  return [
    figure('pm-size', 'Preference model accuracy vs size', inputs.pmSizes, 'pmSizes', pmSizesFigure),
    figure(
      'calibration',
      'Preference model calibration',
      inputs.calibration,
      'calibration',
      calibrationFigure,
    ),
    figure(
      'robustness',
      'Reward vs √KL: train PM, test PM and gold',
      inputs.robustness,
      'robustness',
      robustnessFigure,
    ),
    figure('best-of-n', 'Best-of-N (rejection sampling)', inputs.bestOfN, 'bestOfN', bestOfNFigure),
    figure('elo', 'Elo by round', inputs.elo, 'elo', eloFigure),
    figure('ood-layers', 'OOD AUROC by layer', inputs.ood, 'ood', oodLayerFigure),
    figure('ood-few-shot', 'Few-shot outlier exposure', inputs.ood, 'ood', fewShotFigure, (o) =>
      o.fewShot.length ? null : 'no few-shot results (too few harmful prompts?)',
    ),
    figure('evals', 'Evaluations (task accuracy / NLP)', inputs.eval, 'eval', evalTable),
  ];
}

/** The demo's claims as a table: held, short of the target or failed, stage, figure, value [95% CI], target, the paper's claim. */
function claimsTable(claims: readonly ClaimIn[]): string {
  const rows = claims.map((c) => {
    const status = claimStatus(c);
    const label = status === 'FAILED' ? status : status.toLowerCase();
    return `<tr class="${status.toLowerCase()}"><td>${label}</td><td>${escapeXml(c.stage)}</td><td>${escapeXml(c.figure)}${c.note ? `<br><small>${escapeXml(c.note)}</small>` : ''}</td><td>${escapeXml(formatInterval(c.value))}</td><td>${escapeXml(c.target)}</td><td>${escapeXml(c.paper)}</td></tr>`;
  });
  const held = claims.filter((c) => c.held).length;
  const wrong = claims.filter((c) => !c.direction).length;
  return `<section id="claims" data-held="${held}" data-failed="${wrong}" data-claims="${claims.length}">
<h2>The paper’s effects on this run: ${held} of ${claims.length} held, ${claims.length - held - wrong} short of the target, ${wrong} the wrong way (95% bootstrap intervals)</h2>
<table class="evals claims"><tr><th></th><th>stage</th><th>measured</th><th>value [95% CI]</th><th>target</th><th>paper</th></tr>
${rows.join('\n')}
</table></section>
`;
}

const CSS = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1200px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:16px;margin:0 0 8px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:16px}
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:12px;background:#fff}
figcaption{font-size:12px;color:#555;margin-top:6px}p.fraction{font-size:13px;margin:6px 0 0}code{background:#f4f4f4;padding:1px 4px;border-radius:3px;word-break:break-all}
.note{color:#8a5a00;background:#fff8e6;border:1px dashed #e0b050;padding:12px;border-radius:4px;font-size:13px}
table.evals{border-collapse:collapse;font-size:13px}table.evals th,table.evals td{border:1px solid #ddd;padding:4px 8px;text-align:right}
table.evals th:first-child{text-align:left}
table.claims td{text-align:left}tr.held td:first-child{color:#1a7f37}tr.failed td:first-child{color:#c62828;font-weight:bold}tr.short td:first-child{color:#b26a00}
section#claims{margin-bottom:16px}`;

/**
 * Renders the report page from a run's inputs.
 *
 * @example writeFileSync('report.html', renderReport(readRunInputs('runs/demo'), { title: 'demo' }));
 */
export function renderReport(inputs: RunInputs, opts: { title?: string; generatedAt?: string } = {}): string {
  const figures = buildFigures(inputs);
  const drawn = figures.filter((f) => f.body).length;
  const sections = figures.map((f) => {
    const body = f.body ?? `<p class="note">Skipped: ${escapeXml(f.note ?? 'no data')}</p>`;
    const source = f.source ? ` from <code>${escapeXml(f.source)}</code>` : '';
    return `<figure id="${f.id}" data-figure="${f.id}" data-drawn="${f.body ? 'yes' : 'no'}">
<h2>${escapeXml(f.title)}</h2>
${body}
<figcaption>Produced by <code>${escapeXml(f.command)}</code>${source}</figcaption>
</figure>`;
  });
  const title = opts.title ?? 'hhkit report';
  const claims = 'data' in inputs.claims ? claimsTable(inputs.claims.data) : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeXml(title)}</title><style>${CSS}</style></head>
<body>
<h1>${escapeXml(title)}</h1>
<p>${drawn} of ${figures.length} figures drawn${opts.generatedAt ? `, generated ${escapeXml(opts.generatedAt)}` : ''}. Bai et al. 2022, “Training a Helpful and Harmless Assistant with RLHF”, reproduced in miniature.</p>
${claims}<div class="grid">
${sections.join('\n')}
</div>
</body></html>
`;
}
