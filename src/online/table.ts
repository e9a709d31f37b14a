// The per-round summary of an online run: what the paper reports per deployment round (§4.5, Fig. 1/14),
// with the world's gold metrics beside the proxies. Also the "Elo by round" file the report draws.

/** One row: round k's PM (trained on every comparison up to round k) and the policy PPO made against it. */
export interface RoundRow {
  round: number;
  policy: string;
  /** Comparisons the round's PM trained on (the world's static ones + every round so far). */
  comparisons: number;
  /** Comparisons collected in this round (0 for round 0). */
  newComparisons: number;
  pmCrowdAccuracy: number;
  pmGoldAccuracy: number;
  /** Gold HH score (0–1) of the round's policy on held-out prompts. */
  gold: number;
  /** Crowd Elo of the round's policy against the base policy (Elo 0), with its bootstrap interval. */
  elo?: number;
  lower?: number;
  upper?: number;
  /** Elo the final PM predicts from its mean score on the policy's samples (174 per nat). */
  pmElo?: number;
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');
const num = (x: number | undefined, digits = 0): string =>
  x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : '—';

/**
 * The table as fixed-width text (what `hhkit online` prints at the end).
 *
 * @example console.log(formatRoundTable(rows, { gold: 0.41 }));
 */
export function formatRoundTable(
  rows: readonly RoundRow[],
  base: { name: string; gold: number; pmElo?: number },
): string {
  const header = [
    'round',
    'policy',
    '#cmp',
    'new',
    'PM acc crowd',
    'PM acc gold',
    'gold HH',
    'crowd Elo [95% CI]',
    'PM Elo',
  ];
  const body = rows.map((r) => [
    String(r.round),
    r.policy,
    String(r.comparisons),
    String(r.newComparisons),
    pct(r.pmCrowdAccuracy),
    pct(r.pmGoldAccuracy),
    num(r.gold, 3),
    r.elo === undefined ? '—' : `${num(r.elo)} [${num(r.lower)}, ${num(r.upper)}]`,
    num(r.pmElo),
  ]);
  body.unshift(['—', base.name, '—', '—', '—', '—', num(base.gold, 3), '0 (anchor)', num(base.pmElo ?? 0)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The report's "Elo by round" file: the round's policy's crowd Elo and PM-predicted Elo per round. */
export interface EloRoundsFile {
  rounds: { round: number; models: { model: string; elo: number; lower?: number; upper?: number }[] }[];
  command?: string;
  [key: string]: unknown;
}

/**
 * elo-rounds.json (read by src/report/inputs.ts): one entry per round with two series, "crowdworker
 * Elo" (with its interval) and "PM-predicted Elo", so the figure plots both against the round.
 *
 * @example eloRoundsFile(rows).rounds[1].models[0] // { model: 'crowdworker Elo', elo: 52, lower: 10, upper: 95 }
 */
export function eloRoundsFile(rows: readonly RoundRow[], extra: Record<string, unknown> = {}): EloRoundsFile {
  return {
    ...extra,
    rounds: rows
      .filter((r) => r.elo !== undefined || r.pmElo !== undefined)
      .map((r) => ({
        round: r.round,
        models: [
          ...(r.elo === undefined
            ? []
            : [
                {
                  model: 'crowdworker Elo',
                  elo: r.elo,
                  ...(r.lower === undefined ? {} : { lower: r.lower, upper: r.upper! }),
                },
              ]),
          ...(r.pmElo === undefined ? [] : [{ model: 'PM-predicted Elo', elo: r.pmElo }]),
        ],
      })),
  };
}
