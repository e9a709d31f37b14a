/**
 * The result files `hhkit report` reads, their JSON shapes, and validation. A run folder holds
 * whatever stages were run; each figure looks for its file anywhere under the folder (by name, first
 * match in sorted path order, at most 4 folders deep). A missing file skips the figure with a note;
 * a malformed one gives a note naming the file and what is wrong — never a crash.
 *
 * Files (every object may also carry "command": the command line that produced it):
 * - pm-sizes.json     {"points": [{"params": 1.2e5, "accuracy": 0.61, "name"?: "small"}]}, or size.json,
 *   `hhkit pm experiment size`'s: its "points" (each size's mean over its runs) or, in files written
 *   before it had repeats, its "rows" [{"parameters", "accuracy", "goldAccuracy"?, "name"}]
 * - pm-eval.json      `hhkit pm eval`'s report (PMEvalReport: "calibration": {"bins": […]}, "accuracy"),
 *   or calibration.json, a bare Calibration {"bins": [{"meanGap", "predicted", "accuracy",
 *   "count", "standardError"?}], "ece"?}
 * - robustness.json   {"points": [{"sqrtKL", "trainPm", "testPm", "gold"?}]}; the line is fitted here
 *   on the early half of the train-PM curve (or given as "fit": {"slope", "intercept", "xMin"?, "xMax"?})
 * - metrics.jsonl     PPO's log: lines {"type": "eval", "sqrtKL", "reward", "gold"?} are plotted when
 *   robustness.json is absent (reward vs √KL of one policy)
 * - best-of-n.json    {"points" | "rows": [{"n": 4, "reward"?, "gold"?, "sqrtKL"?}]} (`hhkit best-of-n --out`)
 * - elo-rounds.json   {"rounds": [{"round": 1, "models": [{"model", "elo", "lower"?, "upper"?}]}]}, or
 *   elo.json, `hhkit elo --json`'s summary {"models": [{"model", "elo", "lower", "upper"}]}
 * - ood.json          `hhkit ood --out`: OodReport (layers[], bestLayer, fewShot[])
 * - eval.json         `hhkit eval --out`: EvalFile below
 * - claims.json       `hhkit demo`'s {"claims": [{"stage", "figure", "value": {"value", "lower", "upper"} | null,
 *   "target", "paper", "held", "note"?}]}: the table shown on top of the report
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface Loaded<T> {
  /** Path relative to the run folder. */
  file: string;
  data: T;
  command?: string;
}

/** Why a figure has no data: absent file or malformed one. */
export interface Missing {
  note: string;
}

export type Input<T> = Loaded<T> | Missing;

export class ShapeError extends Error {}

// ---- tiny validators: each throws ShapeError with the JSON path of the problem ----
type Json = Record<string, unknown>;
function obj(v: unknown, at: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ShapeError(`${at} must be an object`);
  return v as Json;
}
function list(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) throw new ShapeError(`${at} must be a list`);
  return v;
}
function num(v: unknown, at: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new ShapeError(`${at} must be a number`);
  return v;
}
function optNum(v: unknown, at: string): number | undefined {
  return v === undefined || v === null ? undefined : num(v, at);
}
function str(v: unknown, at: string): string {
  if (typeof v !== 'string') throw new ShapeError(`${at} must be a string`);
  return v;
}
const nonEmpty = <T>(xs: T[], at: string): T[] => {
  if (xs.length === 0) throw new ShapeError(`${at} is empty`);
  return xs;
};

// ---- shapes ----
export interface PmSizePoint {
  params: number;
  accuracy: number;
  name?: string;
}
export interface CalibrationBinIn {
  meanGap: number;
  predicted: number;
  accuracy: number;
  count: number;
  standardError?: number;
}
export interface CalibrationIn {
  bins: CalibrationBinIn[];
  ece?: number;
  accuracy?: number;
}
export interface RobustnessPoint {
  sqrtKL: number;
  trainPm: number;
  testPm?: number;
  gold?: number;
  /** Gold's gain over the start in train-PM units (`hhkit robustness`'s goldPM). */
  goldPm?: number;
}
export interface RobustnessIn {
  points: RobustnessPoint[];
  fit?: { slope: number; intercept: number; xMin?: number; xMax?: number };
  /** True when the points come from PPO's metrics.jsonl (one PM only). */
  fromPpoLog?: boolean;
  /** The test PM's gain as a fraction of the train PM's, each in its own units (`hhkit robustness`). */
  gainFraction?: { early: number; atLargestKL: number };
}
export interface BestOfNPoint {
  n: number;
  reward?: number;
  gold?: number;
  sqrtKL?: number;
}
export interface EloModel {
  model: string;
  elo: number;
  lower?: number;
  upper?: number;
}
export interface EloRoundsIn {
  rounds: { round: number; models: EloModel[] }[];
}
export interface OodIn {
  pool: string;
  layers: {
    layer: number;
    mahalanobis: number;
    simplifiedRelativeMahalanobis: number;
    diagonalMahalanobis?: number;
  }[];
  bestLayer: number;
  fewShot: { shots: number; mean: number; std: number }[];
  model?: string;
}
export interface EvalResultIn {
  metric: string;
  value: number;
  accuracyNorm?: number;
  count: number;
  hh?: number;
}
/** What `hhkit eval --out` writes. */
export interface EvalFile {
  tasks: { name: string; file: string; format: string; count: number; skipped: number }[];
  models: { model: string; results: Record<string, EvalResultIn> }[];
}

const parsers = {
  pmSizes(j: Json): PmSizePoint[] {
    return nonEmpty(
      // `hhkit pm experiment size` writes "points" (means per size; gold accuracy on the world) and "rows"
      // (every run, {"parameters", "accuracy", "goldAccuracy"?}); files from before its repeats hold rows only.
      list(j['points'] ?? j['rows'], 'points').map((p, i) => {
        const o = obj(p, `points[${i}]`);
        const name = o['name'] === undefined ? undefined : str(o['name'], `points[${i}].name`);
        return {
          params: num(o['params'] ?? o['parameters'], `points[${i}].params`),
          // on the world, accuracy against the gold labels is the meaningful one when present
          accuracy: num(o['goldAccuracy'] ?? o['accuracy'], `points[${i}].accuracy`),
          ...(name === undefined ? {} : { name }),
        };
      }),
      'points',
    );
  },
  calibration(j: Json): CalibrationIn {
    const c = 'calibration' in j ? obj(j['calibration'], 'calibration') : j;
    const at = 'calibration' in j ? 'calibration.bins' : 'bins';
    const bins = nonEmpty(
      list(c['bins'], at).map((b, i) => {
        const o = obj(b, `${at}[${i}]`);
        const se = optNum(o['standardError'], `${at}[${i}].standardError`);
        return {
          meanGap: num(o['meanGap'], `${at}[${i}].meanGap`),
          predicted: num(o['predicted'], `${at}[${i}].predicted`),
          accuracy: num(o['accuracy'], `${at}[${i}].accuracy`),
          count: num(o['count'], `${at}[${i}].count`),
          ...(se === undefined ? {} : { standardError: se }),
        };
      }),
      at,
    );
    const ece = optNum(c['ece'], 'ece');
    const accuracy = optNum(c['accuracy'] ?? j['accuracy'], 'accuracy');
    return { bins, ...(ece === undefined ? {} : { ece }), ...(accuracy === undefined ? {} : { accuracy }) };
  },
  claims(j: Json): ClaimIn[] {
    return list(j['claims'], 'claims').map((c, i) => {
      const o = obj(c, `claims[${i}]`);
      const v =
        o['value'] === null || o['value'] === undefined ? null : obj(o['value'], `claims[${i}].value`);
      return {
        stage: str(o['stage'], `claims[${i}].stage`),
        figure: str(o['figure'], `claims[${i}].figure`),
        value: v && {
          value: num(v['value'], `claims[${i}].value.value`),
          lower: num(v['lower'], `claims[${i}].value.lower`),
          upper: num(v['upper'], `claims[${i}].value.upper`),
        },
        target: str(o['target'], `claims[${i}].target`),
        paper: str(o['paper'], `claims[${i}].paper`),
        held: o['held'] === true,
        // Files from before the direction check: a held claim went the right way, any other is unknown.
        direction: o['direction'] === true || o['held'] === true,
        ...(typeof o['note'] === 'string' ? { note: o['note'] } : {}),
      };
    });
  },
  robustness(j: Json): RobustnessIn {
    const points = nonEmpty(
      list(j['points'], 'points').map((p, i) => {
        const o = obj(p, `points[${i}]`);
        // `hhkit robustness` writes trainPM/testPM; trainPm/testPm are accepted too. The test PM is drawn in
        // train-PM units (testPMScaled) where the file has them.
        const testPm = optNum(o['testPMScaled'] ?? o['testPm'] ?? o['testPM'], `points[${i}].testPm`);
        const gold = optNum(o['gold'], `points[${i}].gold`);
        const goldPm = optNum(o['goldPm'] ?? o['goldPM'], `points[${i}].goldPm`);
        return {
          sqrtKL: num(o['sqrtKL'] ?? o['sqrtKl'], `points[${i}].sqrtKL`),
          trainPm: num(o['trainPm'] ?? o['trainPM'], `points[${i}].trainPm`),
          ...(testPm === undefined ? {} : { testPm }),
          ...(gold === undefined ? {} : { gold }),
          ...(goldPm === undefined ? {} : { goldPm }),
        };
      }),
      'points',
    );
    // Absent or null in files from before it, or when the train PM gained nothing.
    const g =
      j['gainFraction'] === undefined || j['gainFraction'] === null
        ? null
        : obj(j['gainFraction'], 'gainFraction');
    const gainFraction = g
      ? {
          early: num(g['early'], 'gainFraction.early'),
          atLargestKL: num(g['atLargestKL'], 'gainFraction.atLargestKL'),
        }
      : null;
    const read = { points, ...(gainFraction ? { gainFraction } : {}) };
    if (j['fit'] === undefined) return read;
    const f = obj(j['fit'], 'fit');
    return {
      ...read,
      fit: {
        slope: num(f['slope'], 'fit.slope'),
        intercept: num(f['intercept'], 'fit.intercept'),
        ...(f['xMin'] === undefined ? {} : { xMin: num(f['xMin'], 'fit.xMin') }),
        ...(f['xMax'] === undefined ? {} : { xMax: num(f['xMax'], 'fit.xMax') }),
      },
    };
  },
  bestOfN(j: Json): BestOfNPoint[] {
    return nonEmpty(
      // `hhkit best-of-n --out` writes its table as "rows"; "points" is accepted too.
      list(j['points'] ?? j['rows'], 'points').map((p, i) => {
        const o = obj(p, `points[${i}]`);
        const out: BestOfNPoint = { n: num(o['n'], `points[${i}].n`) };
        for (const k of ['reward', 'gold', 'sqrtKL'] as const) {
          const v = optNum(o[k], `points[${i}].${k}`);
          if (v !== undefined) out[k] = v;
        }
        if (out.reward === undefined && out.gold === undefined)
          throw new ShapeError(`points[${i}] needs "reward" or "gold"`);
        return out;
      }),
      'points',
    );
  },
  elo(j: Json): EloRoundsIn {
    const model = (m: unknown, at: string): EloModel => {
      const o = obj(m, at);
      const lower = optNum(o['lower'], `${at}.lower`);
      const upper = optNum(o['upper'], `${at}.upper`);
      return {
        model: str(o['model'], `${at}.model`),
        elo: num(o['elo'], `${at}.elo`),
        ...(lower === undefined ? {} : { lower }),
        ...(upper === undefined ? {} : { upper }),
      };
    };
    if (j['rounds'] === undefined) {
      // `hhkit elo --json`: one table, drawn as round 0.
      return {
        rounds: [
          {
            round: 0,
            models: nonEmpty(
              list(j['models'], 'models').map((m, i) => model(m, `models[${i}]`)),
              'models',
            ),
          },
        ],
      };
    }
    return {
      rounds: nonEmpty(
        list(j['rounds'], 'rounds').map((r, i) => {
          const o = obj(r, `rounds[${i}]`);
          return {
            round: num(o['round'], `rounds[${i}].round`),
            models: list(o['models'], `rounds[${i}].models`).map((m, k) =>
              model(m, `rounds[${i}].models[${k}]`),
            ),
          };
        }),
        'rounds',
      ),
    };
  },
  ood(j: Json): OodIn {
    const layers = nonEmpty(
      list(j['layers'], 'layers').map((l, i) => {
        const o = obj(l, `layers[${i}]`);
        return {
          layer: num(o['layer'], `layers[${i}].layer`),
          mahalanobis: num(o['mahalanobis'], `layers[${i}].mahalanobis`),
          simplifiedRelativeMahalanobis: num(
            o['simplifiedRelativeMahalanobis'],
            `layers[${i}].simplifiedRelativeMahalanobis`,
          ),
        };
      }),
      'layers',
    );
    const fewShot = list(j['fewShot'] ?? [], 'fewShot').map((f, i) => {
      const o = obj(f, `fewShot[${i}]`);
      return {
        shots: num(o['shots'], `fewShot[${i}].shots`),
        mean: num(o['mean'], `fewShot[${i}].mean`),
        std: num(o['std'] ?? 0, `fewShot[${i}].std`),
      };
    });
    return {
      pool: typeof j['pool'] === 'string' ? j['pool'] : 'mean',
      layers,
      bestLayer: num(j['bestLayer'], 'bestLayer'),
      fewShot,
      ...(typeof j['model'] === 'string' ? { model: j['model'] } : {}),
    };
  },
  eval(j: Json): EvalFile {
    const tasks = list(j['tasks'] ?? [], 'tasks').map((t, i) => {
      const o = obj(t, `tasks[${i}]`);
      return {
        name: str(o['name'], `tasks[${i}].name`),
        file: typeof o['file'] === 'string' ? o['file'] : '',
        format: typeof o['format'] === 'string' ? o['format'] : '',
        count: num(o['count'] ?? 0, `tasks[${i}].count`),
        skipped: num(o['skipped'] ?? 0, `tasks[${i}].skipped`),
      };
    });
    const models = nonEmpty(
      list(j['models'], 'models').map((m, i) => {
        const o = obj(m, `models[${i}]`);
        const results: Record<string, EvalResultIn> = {};
        for (const [task, r] of Object.entries(obj(o['results'], `models[${i}].results`))) {
          const at = `models[${i}].results.${task}`;
          const ro = obj(r, at);
          const norm = optNum(ro['accuracyNorm'], `${at}.accuracyNorm`);
          const hh = optNum(ro['hh'], `${at}.hh`);
          results[task] = {
            metric: str(ro['metric'], `${at}.metric`),
            value: num(ro['value'], `${at}.value`),
            count: num(ro['count'], `${at}.count`),
            ...(norm === undefined ? {} : { accuracyNorm: norm }),
            ...(hh === undefined ? {} : { hh }),
          };
        }
        return { model: str(o['model'], `models[${i}].model`), results };
      }),
      'models',
    );
    return { tasks, models };
  },
};

/** Every file under `dir` (sorted, ≤ 4 levels, skipping dot-folders and checkpoints' weights). */
export function listRunFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.') || name === 'node_modules') continue;
      const p = join(d, name);
      let isDir = false;
      try {
        isDir = statSync(p).isDirectory();
      } catch {
        continue;
      }
      if (isDir) {
        if (depth < 4) walk(p, depth + 1);
      } else if (name.endsWith('.json') || name.endsWith('.jsonl')) out.push(p);
    }
  };
  walk(dir, 0);
  return out;
}

function readJsonFile<T>(dir: string, path: string, parse: (j: Json) => T): Input<T> {
  const file = relative(dir, path);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return { note: `${file}: cannot read it as JSON (${(err as Error).message})` };
  }
  try {
    const j = obj(raw, 'the file');
    const data = parse(j);
    return { file, data, ...(typeof j['command'] === 'string' ? { command: j['command'] } : {}) };
  } catch (err) {
    if (err instanceof ShapeError) return { note: `${file}: ${err.message}` };
    throw err;
  }
}

/** Reward vs √KL points from PPO metrics.jsonl eval lines; null when the file has none. */
function ppoLog(dir: string, path: string): Input<RobustnessIn> | null {
  const points: RobustnessPoint[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.includes('"eval"')) continue;
    try {
      const o = JSON.parse(line) as Json;
      if (o['type'] === 'eval' && typeof o['sqrtKL'] === 'number' && typeof o['reward'] === 'number') {
        points.push({
          sqrtKL: o['sqrtKL'],
          trainPm: o['reward'],
          ...(typeof o['gold'] === 'number' && Number.isFinite(o['gold']) ? { gold: o['gold'] } : {}),
        });
      }
    } catch {
      // A half-written last line of a running job: ignore it.
    }
  }
  return points.length ? { file: relative(dir, path), data: { points, fromPpoLog: true } } : null;
}

/** `hhkit demo`'s claims.json: the paper's effects measured on the run, with intervals. */
export interface ClaimIn {
  stage: string;
  figure: string;
  value: { value: number; lower: number; upper: number } | null;
  target: string;
  paper: string;
  held: boolean;
  /** Whether the effect went the paper's way (false: the demo failed on it). */
  direction: boolean;
  note?: string;
}

/** HELD (target met), SHORT (the right direction, short of the target) or FAILED (the wrong way). */
export const claimStatus = (c: Pick<ClaimIn, 'held' | 'direction'>): 'HELD' | 'SHORT' | 'FAILED' =>
  c.held ? 'HELD' : c.direction ? 'SHORT' : 'FAILED';

export interface RunInputs {
  claims: Input<ClaimIn[]>;
  pmSizes: Input<PmSizePoint[]>;
  calibration: Input<CalibrationIn>;
  robustness: Input<RobustnessIn>;
  bestOfN: Input<BestOfNPoint[]>;
  elo: Input<EloRoundsIn>;
  ood: Input<OodIn>;
  eval: Input<EvalFile>;
}

/**
 * Finds and validates every result file of a run folder.
 *
 * @example const inputs = readRunInputs('runs/demo'); if ('data' in inputs.ood) inputs.ood.data.bestLayer;
 */
export function readRunInputs(dir: string): RunInputs {
  const files = listRunFiles(dir);
  const find = <T>(names: string[], parse: (j: Json) => T): Input<T> => {
    for (const name of names) {
      const path = files.find((p) => p.endsWith(`/${name}`) || p === name);
      if (path) return readJsonFile(dir, path, parse);
    }
    return { note: `no ${names.join(' or ')} under ${dir}` };
  };
  let robustness = find(['robustness.json'], parsers.robustness);
  if (!('data' in robustness)) {
    for (const path of files.filter((p) => p.endsWith('metrics.jsonl'))) {
      const got = ppoLog(dir, path);
      if (got) {
        robustness = got;
        break;
      }
    }
  }
  return {
    claims: find(['claims.json'], parsers.claims),
    pmSizes: find(['pm-sizes.json', 'size.json'], parsers.pmSizes),
    calibration: find(['pm-eval.json', 'calibration.json'], parsers.calibration),
    robustness,
    bestOfN: find(['best-of-n.json'], parsers.bestOfN),
    elo: find(['elo-rounds.json', 'elo.json'], parsers.elo),
    ood: find(['ood.json'], parsers.ood),
    eval: find(['eval.json'], parsers.eval),
  };
}
