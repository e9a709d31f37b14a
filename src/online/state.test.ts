import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultOnlineConfig, type OnlineConfig } from './config.ts';
import { openState, STATE_FILE } from './state.ts';

test('a state file written before policyTrainer existed resumes as PPO, and is refused for rs, naming the key', () => {
  const out = mkdtempSync(join(tmpdir(), 'hhkit-state-'));
  const config: OnlineConfig = { ...defaultOnlineConfig, out, world: '/w', init: '/i' };
  // The old file's config has every fixed key but policyTrainer.
  const { policyTrainer: _, ...old } = config;
  writeFileSync(join(out, STATE_FILE), JSON.stringify({ format: 'hhkit-online/1', config: old, rounds: [] }));
  assert.equal(openState(config).config.policyTrainer, 'ppo');
  assert.throws(
    () => openState({ ...config, policyTrainer: 'rs' }),
    /different policyTrainer \(undefined → "rs"\)/,
  );
});
