// The world's gold judge as a PM-evaluation callback (cli wires it in, so src/pm stays world-free).
import type { GoldPreference } from '../pm/evaluate.ts';
import { goldJudgeTranscript, redTeamValue } from '../world/index.ts';

/**
 * Gold preference on world comparisons, by the same values the world's crowd is scored with
 * (manifest.crowd.*.accuracyVsGold): helpfulness for helpful data; for harmless (red-team) data the
 * chosen one should be the less harmful, i.e. lower red-team value. Equal gold values are ties (0).
 *
 * @example worldGold(record, 'helpful') // 1 when record.chosen is gold-more-helpful
 */
export const worldGold: GoldPreference = (record, task) => {
  const a = goldJudgeTranscript(record.chosen);
  const b = goldJudgeTranscript(record.rejected);
  const [x, y] = task === 'helpful' ? [a.helpfulness, b.helpfulness] : [-redTeamValue(a), -redTeamValue(b)];
  if (Math.abs(x - y) < 1e-9) return 0;
  return x > y ? 1 : -1;
};
