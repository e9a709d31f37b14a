// The API reference (`npm run docs`): TypeDoc over the package's entry points (src/index.ts, 'hhkit';
// src/server/index.ts, 'hhkit/server') builds with no error and no warning, so every type a public signature names is exported and every {@link} resolves,
// and the stages' entry points keep their doc comments with an example. Writes into a temp folder, not
// docs/api. About 20 s on one core.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What a user reaches for first: each must say what it does and show a call. */
const ENTRY_POINTS = [
  'generateWorld',
  'resolveLMTrainConfig',
  'trainLM',
  'resolvePMTrainConfig',
  'trainPreferenceModel',
  'loadPreferenceModel',
  'scoreTranscripts',
  'distill',
  'validatePPOConfig',
  'trainPPO',
  'bestOfN',
  'runOnline',
  'loadCheckpoint',
  'saveCheckpoint',
  'storedComparisons',
  'startServer',
];

interface Reflection {
  name: string;
  kind: number;
  children?: Reflection[];
  signatures?: { comment?: { summary: unknown[]; blockTags?: { tag: string }[] } }[];
}

test('npm run docs: TypeDoc documents the package entry points without errors or warnings', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'hhkit-docs-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const typedoc = join(repo, 'node_modules', 'typedoc', 'bin', 'typedoc');
  const r = spawnSync(
    process.execPath,
    [typedoc, '--out', join(out, 'html'), '--json', join(out, 'api.json'), '--treatWarningsAsErrors'],
    { cwd: repo, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `typedoc failed:\n${r.stdout}\n${r.stderr}`);
  assert.ok(existsSync(join(out, 'html', 'index.html')));

  const api = JSON.parse(readFileSync(join(out, 'api.json'), 'utf8')) as { children: Reflection[] };
  // One module per entry point, named by its @module tag.
  assert.deepEqual(
    api.children.map((m) => m.name),
    ['hhkit', 'hhkit/server'],
  );
  const byName = new Map(api.children.flatMap((m) => m.children ?? []).map((c) => [c.name, c]));
  for (const name of ENTRY_POINTS) {
    const comment = byName.get(name)?.signatures?.[0]?.comment;
    assert.ok(comment && comment.summary.length > 0, `${name}: no doc comment in the API reference`);
    assert.ok(
      comment.blockTags?.some((tag) => tag.tag === '@example'),
      `${name}: its doc comment has no @example`,
    );
  }
});
