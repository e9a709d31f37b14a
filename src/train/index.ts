/** LM training: pretraining and SFT on transcripts (`trainLM`), its config, data pipeline and checkpoints. */
export { type Batch as LMBatch, exampleCount, IGNORE_INDEX, makeBatch } from './batches.ts';
export { EpochOrder } from '../util/epoch-order.ts';
export {
  camelKey,
  ConfigError,
  defaultLMTrainConfig,
  type LMTrainConfig,
  type LossOn,
  lmTrainConfigDocs,
  resolveLMTrainConfig,
} from './config.ts';
export {
  type CorpusDocument,
  type CorpusReadOptions,
  type CorpusReport,
  readCorpusDocuments,
} from './corpus.ts';
export {
  assistantMask,
  type PreparedCorpus,
  type PrepareCorpusOptions,
  prepareCorpus,
  type TokenStream,
} from './dataset.ts';
export { type TrainEvent, type TrainLMOptions, type TrainLMResult, trainLM } from './loop.ts';
export { learningRate, type ScheduleConfig } from './schedule.ts';
export {
  latestCheckpointDir,
  type LoadedTrainingCheckpoint,
  readTrainingCheckpoint,
  type TrainerState,
} from './state.ts';
