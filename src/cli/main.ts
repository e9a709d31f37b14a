import { UsageError } from './args.ts';

/** One `hhkit <name>` command. `run` returns the process exit status. */
export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<number>;
}

// Commands load lazily so `hhkit --help` stays instant and one command's deps don't slow the others.
const commands: Record<string, () => Promise<{ command: Command }>> = {
  demo: () => import('./demo.ts'),
  elo: () => import('./elo.ts'),
  data: () => import('./data.ts'),
  world: () => import('./world.ts'),
  pretrain: () => import('./pretrain.ts'),
  launch: () => import('./launch.ts'),
  distill: () => import('./distill.ts'),
  ppo: () => import('./ppo.ts'),
  'best-of-n': () => import('./best-of-n.ts'),
  robustness: () => import('./robustness.ts'),
  pm: () => import('./pm.ts'),
  online: () => import('./online.ts'),
  serve: () => import('./serve.ts'),
  ood: () => import('./ood.ts'),
  eval: () => import('./eval.ts'),
  report: () => import('./report.ts'),
};

async function usage(): Promise<string> {
  const lines = ['usage: hhkit <command> [options]   (hhkit <command> --help for details)', '', 'commands:'];
  for (const [name, load] of Object.entries(commands)) {
    try {
      const { command } = await load();
      lines.push(`  ${name.padEnd(12)} ${command.summary}`);
    } catch {
      // A command whose module is not present yet is simply not listed.
    }
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    console.error(`hhkit: unknown command '${name}'\n\n${await usage()}`);
    return 2;
  }
  const { command } = await load();
  // Options after `--` belong to an inner command (hhkit launch -- pretrain --help).
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  return command.run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`hhkit: ${err.message}`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
