import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const tempPrefix = (path: string) => `.${basename(path)}.tmp-`;

function tempPath(path: string): string {
  return join(dirname(path), `${tempPrefix(path)}${process.pid}-${Date.now().toString(36)}`);
}

/**
 * Removes the temp files that atomic writes of `path` left beside it when a kill cut them short (any
 * process's), so a rerun's folder holds only finished files.
 *
 * @example removeAtomicTemps('run/state.json'); // .state.json.tmp-1234-… gone
 */
export function removeAtomicTemps(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) return;
  for (const n of readdirSync(dir)) if (n.startsWith(tempPrefix(path))) rmSync(join(dir, n), { force: true });
}

/**
 * Writes a file atomically: to a temp file in the same folder, fsync, then rename over the target,
 * so a crash leaves either the old file or the new one, never half of one.
 *
 * @example writeFileAtomicSync('run/metrics.json', JSON.stringify(m));
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = tempPath(path);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Async form of {@link writeFileAtomicSync}. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPath(path);
  await writeFile(tmp, data, { flush: true });
  await rename(tmp, path);
}
