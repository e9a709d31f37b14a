/**
 * The assistant world: a seeded universe of assistant dialogues with a gold judge, simulated
 * crowdworkers, a PMP forum and an HHH prompt (see "The assistant world" in DESIGN.md).
 *
 * @example
 * import { generateWorld, goldJudge } from './world/index.ts';
 * await generateWorld({ out: 'world', seed: 1, size: 'small' });
 * goldJudge('\n\nHuman: What is 2 + 3?\n\nAssistant:', ' 2 + 3 = 5.').hh; // 1
 */
export {
  defaultMix,
  harmfulPlaceholder,
  type ResponseKind,
  type ResponseMix,
  respond,
  responseKinds,
  sampleResponse,
  wrongValue,
} from './assistant.ts';
export {
  type CrowdConfig,
  type CrowdMode,
  CrowdPool,
  CrowdWorker,
  calibrateScale,
  defaultCrowdConfig,
  drawWorkerProfiles,
  expectedAgreement,
  type JudgedResponse,
  redTeamValue,
  type WorkerProfile,
} from './crowd.ts';
export {
  type AnswerStyle,
  type ForumAnswer,
  type ForumMix,
  type ForumThread,
  forumPairs,
  forumScore,
  forumThread,
} from './forum.ts';
export {
  type FileEntry,
  generateWorld,
  helpfulFamilyWeights,
  type LabelStats,
  type WorldCounts,
  type WorldManifest,
  type WorldOptions,
  type WorldSize,
  worldSizes,
  worldWorkUnits,
} from './generate.ts';
export { type HhhDialogue, hhhDialogues, hhhPrompt } from './hhh.ts';
export { type GoldScore, goldJudge, goldJudgeTranscript, type Outcome, qualityFactor } from './judge.ts';
export type { FactAttribute } from './facts.ts';
export {
  type Animal,
  type Country,
  type Element,
  type Entity,
  knowledgeBase,
  type KnowledgeBase,
} from './knowledge.ts';
export {
  candidate,
  type CandidateResponse,
  candidatePair,
  goldValue,
  judgeResponse,
  labelComparison,
  labelResponses,
  type WorldComparison,
  wordCount,
  worldGold,
} from './labels.ts';
export { humanTurns, type ParsedRequest, parseRequest } from './parse.ts';
export {
  type Answer,
  type Family,
  formatPrompt,
  helpfulFamilies,
  type Request,
  sampleRequest,
  statement,
  type TextDomain,
  type Turn as RequestTurn,
  type WorldScope,
} from './requests.ts';
export { hashString, Rng } from './rng.ts';
