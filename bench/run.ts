// npm run bench -- [engine|model|ppo|pm|ddp|families|families-ppo|all] [--threads N]
// Prints JSON lines {"bench", "ours", "reference", "unit", "ratio", …}: our figure, PyTorch's figure for
// the same work on the same machine and threads, and ours/reference, all measured in this one run.
// ddp compares 2 processes × 1 thread with 1 process × 1 thread (its own thread count; --threads does not apply).
import { availableParallelism } from 'node:os';
import { runDdpBench } from './ddp.ts';
import { runEngineBench } from './engine.ts';
import { runFamiliesBench } from './families.ts';
import { runFamiliesPPOBench } from './families-ppo.ts';
import { runModelBench } from './model.ts';
import { runPMBench } from './pm.ts';
import { runPPOBench } from './ppo.ts';

const args = process.argv.slice(2);
const threadsAt = args.indexOf('--threads');
const threads = threadsAt >= 0 ? Number(args[threadsAt + 1]) : availableParallelism();
const which = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--threads');
const suites: Record<string, (threads: number) => object[] | Promise<object[]>> = {
  engine: runEngineBench,
  model: runModelBench,
  ppo: runPPOBench,
  pm: runPMBench,
  ddp: runDdpBench,
  families: runFamiliesBench,
  'families-ppo': runFamiliesPPOBench,
};
// 'all' leaves out the real-size benches (families: 5 minutes, ~10 GB; families-ppo: three 135M models and
// AdamW, minutes): ask for them by name.
const realSize = ['families', 'families-ppo'];
const selected =
  which.length === 0 || which.includes('all')
    ? Object.keys(suites).filter((s) => !realSize.includes(s))
    : which;
for (const name of selected) {
  const suite = suites[name];
  if (!suite) {
    console.error(`unknown benchmark '${name}'; choose from: ${Object.keys(suites).join(', ')}, all`);
    process.exit(2);
  }
  for (const line of await suite(threads)) console.log(JSON.stringify(line));
}
