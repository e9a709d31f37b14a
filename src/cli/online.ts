import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { defaultPPOConfig, type PPOConfig } from '../rl/ppo-config.ts';
import { roundComparisons } from '../online/collect.ts';
import {
  defaultOnlineConfig,
  type OnlineConfig,
  OnlineConfigError,
  resolveOnlineConfig,
} from '../online/config.ts';
import { type Collector, type OnlineEvent, runOnline } from '../online/rounds.ts';
import { Progress } from '../util/progress.ts';
import { siblingModule } from '../util/module-path.ts';
import { defaultPMTrainConfigs } from '../pm/config.ts';
import {
  configOptions,
  kebabKey,
  numberOption,
  type OptionSpec,
  outputFolder,
  parseArgs,
  stringOption,
  UsageError,
} from './args.ts';
import type { Command } from './main.ts';
import { onlineTensorboard, TENSORBOARD_HELP } from './tensorboard.ts';

// The keys where a round's PPO defaults differ from hhkit ppo's, as options (--ppo-steps 20 …).
const ppoDefaults = Object.entries(defaultOnlineConfig.ppo)
  .filter(([k, v]) => defaultPPOConfig[k as keyof PPOConfig] !== v)
  .map(([k, v]) => `--ppo-${kebabKey(k)} ${v}`)
  .reduce(
    (lines, o) => {
      const last = lines.length - 1;
      if (lines[last]!.length + o.length < 72) lines[last] = `${lines[last]} ${o}`.trim();
      else lines.push(o);
      return lines;
    },
    [''],
  )
  .join(`\n${' '.repeat(28)}`);

const help = `usage: hhkit online --world DIR --init POLICY [--out DIR] [--rounds N] [--collect simulated|server] [options]

Iterated online training (Bai et al. 2022 §2.3, §4.5). Round 0 trains a PM on the world's static comparisons
(imported into the store as round 0; --round0-data for others) and runs PPO against it (or adopts a PM and
a policy trained that way already: --round0-pm, --round0-policy). Each round k ≥ 1 then
  deploy    the base policy + the newest snapshots (frozen in OUT/models/NAME, registered with lineage)
  collect   new comparisons of their responses — from the world's simulated crowdworkers (default), or from
            people through \`hhkit serve\` (--collect server: started on the deployed snapshots, stopped once
            round k holds the target count) — both recorded through the interface's store path
  data      export round k from the store; the PM trains on every round's export so far
  pm        retrain the PM (finetuning from --pm-init), held-out accuracy vs crowd and gold labels
  ppo       PPO against the new PM, from --init (the distilled or base policy) or, with --policy-from
            previous, from round k − 1's policy; the KL penalty is always against --init. With
            --policy-trainer rs: rejection-sampling finetuning instead — best-of-N by the new PM on the
            training prompts, then supervised finetuning on the kept samples (OUT/rounds/K/rs; no KL
            penalty: --ppo-kl-coef and the other PPO keys but max-new-tokens, device, precision unused)
  register  the new policy snapshot, with its lineage
  evaluate  gold HH score of the new policy on the world's held-out prompts
A closing collection-only round deploys every snapshot (so the last policy gets rated too) on the held-out
prompts (the ones gold HH is measured on; no PM trains on them); then crowd Elo
with bootstrap intervals (the store's comparisons, base = 0) and PM-predicted Elo (174·ΔPM) of every round.

Resumable: rerun the same command after a crash or kill; finished stages are skipped and a stage that was
cut short continues from its checkpoint (PM, PPO, rs finetuning) or from the store (collection).

Writes OUT/state.json, OUT/metrics.jsonl, OUT/table.txt, OUT/summary.json, OUT/elo-rounds.json (the
report's "Elo by round"), OUT/rounds/K/{pm,ppo|rs}, OUT/models/NAME, OUT/data/round-K.jsonl, and the store
(OUT/hhkit.db unless --db).

options:
  --world DIR               the world (hhkit world): prompts, static comparisons, crowd, gold judge
  --init POLICY             the initial policy checkpoint (distilled or base LM): every round's KL reference
  --policy-from FROM        where round k's policy training starts: init (default; every round from --init)
                            or previous (round k − 1's policy — PPO's with its value head — so the rounds
                            accumulate)
  --policy-trainer T        how each trained round makes its policy against its PM: ppo (default, the
                            paper) or rs (rejection-sampling finetuning: the PM's best of --rs-n samples per
                            prompt, then finetuning on them; it samples with --ppo-max-new-tokens and runs on
                            --ppo-device at --ppo-precision)
  --rs-n N                  rs: samples per training prompt, the PM keeps the best (default ${defaultOnlineConfig.rs.n})
  --rs-epochs N             rs: epochs of finetuning over the kept samples, packed several to a 128-token
                            window (95% train, 5% give the final eval loss) (default ${defaultOnlineConfig.rs.epochs})
  --rs-lr X                 rs: peak learning rate, cosine to a tenth of it (default ${defaultOnlineConfig.rs.lr})
  --rs-batch-size N         rs: windows per finetuning step (default ${defaultOnlineConfig.rs.batchSize})
  --rs-prompts N            rs: training prompts used (default ${defaultOnlineConfig.rs.prompts}: all)
  --pm-init CKPT            what each round's PM is finetuned from (a PMP checkpoint; default: --init)
  --out DIR                 run folder (default ${defaultOnlineConfig.out})
  --db PATH                 the store (default OUT/hhkit.db)
  --rounds N                rounds after round 0 (default ${defaultOnlineConfig.rounds})
  --comparisons N           new comparisons per round (default ${defaultOnlineConfig.comparisonsPerRound})
  --eval-comparisons N      comparisons of the closing round (default ${defaultOnlineConfig.evalComparisons}; 0: none)
  --deploy N                snapshots deployed per round, base included (default ${defaultOnlineConfig.deploy})
  --collect MODE            simulated (default) or server
  --port N                  server mode: port of hhkit serve (default 8080)
  --max-new-tokens N        response length when collecting and evaluating (default ${defaultOnlineConfig.maxNewTokens})
  --temperature T, --top-p P  collection sampling (default 1, 0.95, as the server)
  --collect-batch N         prompts per sampling batch (default ${defaultOnlineConfig.collectBatch})
  --eval-prompts N          held-out prompts for gold HH and PM-predicted Elo (default ${defaultOnlineConfig.evalPrompts})
  --bootstrap N             Elo bootstrap resamples (default ${defaultOnlineConfig.bootstrap})
  --seed S                  default 1
  --round0-data FILES       comparison files imported as round 0 (default: the world's static training
                            comparisons), e.g. hhkit collect's comparisons of the initial policy's samples
  --round0-pm CKPT          adopt this PM as round 0's instead of training one (it should be trained on
                            round 0's data), and --round0-policy CKPT the policy PPO trained against it
  --test-data FILES         held-out comparisons each round's PM is scored on (default: the world's test files)
  --pm-KEY V                PM finetuning option KEY (hhkit pm train's keys: --pm-steps, --pm-batch-size,
                            --pm-lr-multiplier, --pm-max-comparisons, --pm-max-length …)
  --ppo-KEY V               PPO option KEY (hhkit ppo's keys: --ppo-steps, --ppo-batch-size, --ppo-lr …); a
                            round's PPO is shorter than hhkit ppo's; where they differ:
                            ${ppoDefaults}
  --tensorboard DIR         ${TENSORBOARD_HELP};
                            one folder per run: DIR/pm/round-K and DIR/ppo/round-K (each round's PM and PPO
                            steps), DIR/rounds (per round, as its stages finish: PM accuracy vs crowd and
                            gold, PPO reward and KL, gold HH, comparisons; at the end crowd and PM-predicted
                            Elo, which a rerun replaces)
  --config FILE.json        options as a JSON object; flags override it
  --json                    the last stdout line is the summary as one JSON object`;

const camel = (key: string): string => key.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
const OWN = new Set([
  'world',
  'init',
  'policy-from',
  'policy-trainer',
  'rs-n',
  'rs-epochs',
  'rs-lr',
  'rs-batch-size',
  'rs-prompts',
  'pm-init',
  'out',
  'db',
  'rounds',
  'comparisons',
  'eval-comparisons',
  'deploy',
  'collect',
  'port',
  'max-new-tokens',
  'temperature',
  'top-p',
  'collect-batch',
  'eval-prompts',
  'bootstrap',
  'seed',
  'round0-data',
  'round0-pm',
  'round0-policy',
  'test-data',
  'tensorboard',
  'json',
  'config',
  'help',
]);

// --pm-KEY and --ppo-KEY: the keys of hhkit pm train and hhkit ppo, less those each round sets itself.
const pmKeys = configOptions(defaultPMTrainConfigs.finetune, ['phase', 'data', 'eval', 'out', 'init']);
const ppoKeys = configOptions(defaultPPOConfig, ['out', 'seed', 'rewardOffset']);
const OPTIONS: OptionSpec = {
  command: 'online',
  values: [
    ...[...OWN].filter((k) => !['json', 'config', 'help'].includes(k)),
    ...pmKeys.values.map((k) => `pm-${k}`),
    ...ppoKeys.values.map((k) => `ppo-${k}`),
  ],
  flags: [...pmKeys.flags.map((k) => `pm-${k}`), ...ppoKeys.flags.map((k) => `ppo-${k}`)],
};

/** The --ppo-KEY options as a typed partial PPO config (values coerced to the default's type). */
function ppoOverrides(options: Record<string, string | boolean>): Partial<PPOConfig> {
  const out: Record<string, unknown> = {};
  for (const [raw, value] of Object.entries(options)) {
    if (!raw.startsWith('ppo-')) continue;
    const key = camel(raw.slice(4)) as keyof PPOConfig;
    const fallback = defaultPPOConfig[key];
    if (fallback === undefined || key === 'out') throw new UsageError(`unknown option --${raw}`);
    if (typeof fallback === 'number') {
      const n = Number(value);
      if (typeof value !== 'string' || !Number.isFinite(n)) throw new UsageError(`--${raw} expects a number`);
      out[key] = n;
    } else if (typeof fallback === 'boolean') out[key] = value === true || value === 'true';
    else out[key] = String(value);
  }
  return out as Partial<PPOConfig>;
}

/** Server mode: `hhkit serve` on the deployed snapshots until the round holds `target` comparisons. */
function serverCollector(port: number, dbPath: () => string): Collector {
  return async ({ store, round, deployed, target }) => {
    const main = fileURLToPath(siblingModule('./main', import.meta.url));
    const args = [
      'serve',
      '--db',
      dbPath(),
      '--models',
      deployed.map((d) => d.path).join(','),
      '--round',
      String(round),
      '--port',
      String(port),
    ];
    const child = spawn(process.execPath, [...process.execArgv, main, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.on('data', (chunk: Buffer) => process.stderr.write(`[serve] ${chunk}`));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    let dead = false;
    void exited.then(() => {
      dead = true;
    });
    const bar = new Progress({ total: target, label: `collect r${round} (people)`, unit: 'cmp' });
    try {
      for (let have = roundComparisons(store, round); have < target; have = roundComparisons(store, round)) {
        if (dead) throw new Error('hhkit serve exited before the round was complete');
        bar.current = have;
        bar.tick(0);
        await new Promise((done) => setTimeout(done, 2000));
      }
    } finally {
      bar.done();
      if (!dead) child.kill('SIGTERM');
      await exited;
    }
  };
}

function describe(e: OnlineEvent, c: OnlineConfig): string | null {
  if (e.type === 'pm' || e.type === 'ppo')
    return e.event.type === 'warning' ? `round ${e.round}: ${e.type} warning: ${e.event.message}` : null;
  if (e.type === 'round') return null;
  // The state's 'ppo' stage is the round's policy, whichever trainer makes it (or adopted as round 0's).
  const name =
    e.stage !== 'ppo'
      ? e.stage
      : e.round === 0 && c.round0Policy
        ? 'policy (adopted: --round0-policy)'
        : c.policyTrainer === 'rs'
          ? 'policy (rejection-sampling finetuning)'
          : 'ppo';
  if (e.status === 'skipped') return `round ${e.round}: ${name} already done`;
  if (e.status === 'started') return `round ${e.round}: ${name}…`;
  return `round ${e.round}: ${name} done in ${(e.seconds ?? 0).toFixed(1)}s`;
}

export const command: Command = {
  summary: 'iterated online rounds: deploy → collect → retrain PM → PPO → Elo',
  help,
  async run(argv) {
    const { options } = parseArgs(argv, OPTIONS);
    const pm: Record<string, string> = {};
    for (const [key, value] of Object.entries(options)) {
      if (key.startsWith('pm-') && key !== 'pm-init') pm[camel(key.slice(3))] = String(value);
    }
    const mode = stringOption(options, 'collect', 'simulated');
    if (mode !== 'simulated' && mode !== 'server')
      throw new UsageError('--collect expects simulated or server');
    const overrides: Partial<OnlineConfig> = {
      world: stringOption(options, 'world', ''),
      init: stringOption(options, 'init', ''),
      policyFrom: stringOption(options, 'policy-from', 'init') as OnlineConfig['policyFrom'],
      policyTrainer: stringOption(options, 'policy-trainer', 'ppo') as OnlineConfig['policyTrainer'],
      rs: {
        n: numberOption(options, 'rs-n', defaultOnlineConfig.rs.n),
        epochs: numberOption(options, 'rs-epochs', defaultOnlineConfig.rs.epochs),
        lr: numberOption(options, 'rs-lr', defaultOnlineConfig.rs.lr),
        batchSize: numberOption(options, 'rs-batch-size', defaultOnlineConfig.rs.batchSize),
        prompts: numberOption(options, 'rs-prompts', defaultOnlineConfig.rs.prompts),
      },
      pmInit: stringOption(options, 'pm-init', ''),
      out: outputFolder(stringOption(options, 'out', defaultOnlineConfig.out), '--out'),
      db: stringOption(options, 'db', ''),
      rounds: numberOption(options, 'rounds', defaultOnlineConfig.rounds),
      comparisonsPerRound: numberOption(options, 'comparisons', defaultOnlineConfig.comparisonsPerRound),
      evalComparisons: numberOption(options, 'eval-comparisons', defaultOnlineConfig.evalComparisons),
      deploy: numberOption(options, 'deploy', defaultOnlineConfig.deploy),
      maxNewTokens: numberOption(options, 'max-new-tokens', defaultOnlineConfig.maxNewTokens),
      temperature: numberOption(options, 'temperature', defaultOnlineConfig.temperature),
      topP: numberOption(options, 'top-p', defaultOnlineConfig.topP),
      collectBatch: numberOption(options, 'collect-batch', defaultOnlineConfig.collectBatch),
      evalPrompts: numberOption(options, 'eval-prompts', defaultOnlineConfig.evalPrompts),
      bootstrap: numberOption(options, 'bootstrap', defaultOnlineConfig.bootstrap),
      seed: numberOption(options, 'seed', defaultOnlineConfig.seed),
      round0Data: stringOption(options, 'round0-data', ''),
      round0PM: stringOption(options, 'round0-pm', ''),
      round0Policy: stringOption(options, 'round0-policy', ''),
      testData: stringOption(options, 'test-data', ''),
      pm,
      ppo: ppoOverrides(options),
    };
    let config: OnlineConfig;
    try {
      config = resolveOnlineConfig(overrides);
    } catch (err) {
      if (err instanceof OnlineConfigError) throw new UsageError(err.message);
      throw err;
    }
    const port = numberOption(options, 'port', 8080);
    const tensorboardDir = stringOption(options, 'tensorboard', '');
    const tensorboard = tensorboardDir ? onlineTensorboard(tensorboardDir) : null;
    const collector =
      mode === 'server' ? serverCollector(port, () => config.db || `${config.out}/hhkit.db`) : undefined;
    try {
      const result = await runOnline(config, {
        progress: true,
        ...(collector ? { collector } : {}),
        command: ['hhkit', 'online', ...argv].join(' '),
        onEvent: (e) => {
          tensorboard?.write(e);
          const line = describe(e, config);
          if (line) console.error(line);
        },
      }).finally(() => tensorboard?.close());
      console.log(result.table);
      console.log(
        `\nwrote ${result.files.table}, ${result.files.eloRounds}, ${result.files.metrics}; store ${result.files.store}`,
      );
      if (options['json'] === true)
        console.log(
          JSON.stringify({ out: config.out, rows: result.rows, base: result.base, elo: result.elo }),
        );
      return 0;
    } catch (err) {
      if (err instanceof OnlineConfigError) {
        console.error(`hhkit online: ${err.message}`);
        return 1;
      }
      throw err;
    }
  },
};
