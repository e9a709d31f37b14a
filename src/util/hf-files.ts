// File names of a Hugging Face model folder that travel with its tokenizer.json. The tokenizer reads them
// (the eos/pad tokens, the stop ids, the chat template); every checkpoint save copies them along, so a
// stage started from a user's folder stops and pads as the folder says, and so do all later stages.
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';
export const SPECIAL_TOKENS_MAP_FILE = 'special_tokens_map.json';

/** Files kept beside tokenizer.json wherever it is copied (each only when present). */
export const TOKENIZER_COMPANION_FILES: readonly string[] = [
  TOKENIZER_CONFIG_FILE,
  GENERATION_CONFIG_FILE,
  SPECIAL_TOKENS_MAP_FILE,
];
