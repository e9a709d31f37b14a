// The registry of `hhkit <name>` commands (main.ts runs them; tests walk them all).

/** One `hhkit <name>` command. `run` returns the process exit status. */
export interface Command {
  summary: string;
  help: string;
  /** Help of a subcommand with its own (`hhkit pm experiment --help`), by the subcommand's name. */
  subcommandHelp?: Record<string, string>;
  run(argv: string[]): Promise<number>;
}

// Commands load lazily so `hhkit --help` stays instant and one command's deps don't slow the others.
export const commands: Record<string, () => Promise<{ command: Command }>> = {
  demo: () => import('./demo.ts'),
  elo: () => import('./elo.ts'),
  data: () => import('./data.ts'),
  world: () => import('./world.ts'),
  pretrain: () => import('./pretrain.ts'),
  launch: () => import('./launch.ts'),
  distill: () => import('./distill.ts'),
  collect: () => import('./collect.ts'),
  ppo: () => import('./ppo.ts'),
  'best-of-n': () => import('./best-of-n.ts'),
  robustness: () => import('./robustness.ts'),
  pm: () => import('./pm.ts'),
  online: () => import('./online.ts'),
  serve: () => import('./serve.ts'),
  ood: () => import('./ood.ts'),
  eval: () => import('./eval.ts'),
  report: () => import('./report.ts'),
  setup: () => import('./setup.ts'),
};
