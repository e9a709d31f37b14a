/** Byte-level BPE tokenizer (GPT-2 scheme) over Hugging Face `tokenizers`, with hhkit's special tokens. */
export {
  BYTE_TO_UNICODE,
  bytesToTokenString,
  GPT2_BYTE_ORDER,
  tokenStringToBytes,
  UNICODE_TO_BYTE,
} from './bytes.ts';
export {
  ASSISTANT_TURN,
  END_OF_CONTEXT,
  END_OF_TEXT,
  HUMAN_TURN,
  PAD,
  SPECIAL_TOKENS,
  TURN_MARKERS,
} from './special.ts';
export {
  type DecodeOptions,
  type EncodeOptions,
  type GenerationStops,
  Tokenizer,
  TokenizerError,
  type TrainingCorpus,
  type TrainTokenizerOptions,
} from './tokenizer.ts';
export { readCompanions, type TokenizerCompanions } from './companions.ts';
export {
  chatMLFormat,
  chatMLToHH,
  type DialogueFormat,
  formatOfChatTemplate,
  HH_FORMAT,
  parseTurns,
  type Segment,
  type SegmentRole,
  type DialogueTurn,
} from './format.ts';
