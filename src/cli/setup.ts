// `hhkit setup`: finds or installs libtorch and builds the native engine, for a project that depends on
// hhkit (npm's install step builds it when it can; this is the command its messages name). The work is
// scripts/install.mjs's, shared with that install step and with a clone's scripts/setup.mjs.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './args.ts';
import type { Command } from './commands.ts';

const HELP = `usage: hhkit setup [--rebuild]

Builds hhkit's native engine (node_modules/hhkit/native) against libtorch: $LIBTORCH, a pip torch for
python3, or Debian's libtorch-dev, which it installs with apt-get when run as root (otherwise it prints the
command to run). Needs a C++ compiler, make and python3. About 30 s on 2 cores; nothing happens when the engine is
already built for these sources, this libtorch and this Node.

  --rebuild    build even when the engine is current`;

export const command: Command = {
  summary: 'build the native engine against libtorch (installing libtorch-dev when root)',
  help: HELP,
  async run(argv) {
    const args = parseArgs(argv, { command: 'setup', flags: ['rebuild'] });
    const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'install.mjs');
    const extra = args.options['rebuild'] === true ? ['--rebuild'] : [];
    const r = spawnSync(process.execPath, [script, '--setup', ...extra], { stdio: 'inherit' });
    return r.status ?? 1;
  },
};
