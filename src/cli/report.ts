import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readRunInputs } from '../report/inputs.ts';
import { buildFigures, renderReport } from '../report/report.ts';
import { type OptionSpec, outputFile, parseArgs, requireFolder, stringOption, UsageError } from './args.ts';
import type { Command } from './main.ts';

const OPTIONS: OptionSpec = { command: 'report', values: ['out', 'title'] };

const help = `usage: hhkit report RUN_DIR [--out report.html] [--title T] [--json]

Writes one self-contained HTML file (inline SVG, no network, no external fonts or scripts) with the
run's figures: PM accuracy vs size, calibration, reward vs √KL (train PM / test PM / gold + fit),
best-of-N, Elo by round, OOD AUROC by layer and the few-shot curve, and the evaluation table.
Result files are found anywhere under RUN_DIR by name (see src/report/inputs.ts): pm-sizes.json,
pm-eval.json|calibration.json, robustness.json|metrics.jsonl, best-of-n.json,
elo-rounds.json|elo.json, ood.json, eval.json. A missing or malformed file skips its figure with a note.

options:
  --out FILE   where to write the page (default RUN_DIR/report.html)
  --title T    page title (default "hhkit report: RUN_DIR")
  --json       the last stdout line is {"report": path, "figures": {id: "drawn" | note}}`;

export const command: Command = {
  summary: 'self-contained HTML report with SVG figures of a run folder',
  help,
  async run(argv) {
    const { positionals, options } = parseArgs(argv, OPTIONS);
    const dir = positionals[0];
    if (!dir || positionals.length > 1) throw new UsageError(`report: give one RUN_DIR\n\n${help}`);
    requireFolder(dir, 'report');
    const out = outputFile(resolve(stringOption(options, 'out', `${dir}/report.html`)), '--out');
    const inputs = readRunInputs(dir);
    const title = stringOption(options, 'title', `hhkit report: ${dir}`);
    writeFileSync(out, renderReport(inputs, { title, generatedAt: new Date().toISOString() }));
    const figures = buildFigures(inputs);
    for (const f of figures)
      console.error(`${f.body ? 'drawn  ' : 'skipped'} ${f.id}${f.body ? '' : `: ${f.note}`}`);
    console.log(`report: ${out}`);
    if (options['json'] === true) {
      console.log(
        JSON.stringify({
          report: out,
          figures: Object.fromEntries(figures.map((f) => [f.id, f.body ? 'drawn' : (f.note ?? '')])),
        }),
      );
    }
    return 0;
  },
};
