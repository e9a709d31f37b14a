// What a Hugging Face folder says about its tokenizer outside tokenizer.json: tokenizer_config.json names
// the eos, pad and bos tokens and holds the chat template; generation_config.json gives the ids that end
// generation (one or a list: Qwen2.5-Instruct stops on both <|im_end|> and <|endoftext|>) and a pad id.
// transformers reads the same keys (PreTrainedTokenizerBase.eos_token, GenerationConfig.eos_token_id).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  GENERATION_CONFIG_FILE,
  TOKENIZER_COMPANION_FILES,
  TOKENIZER_CONFIG_FILE,
} from '../util/hf-files.ts';
import { TokenizerError } from './errors.ts';
import { isObject, type JSONObject } from './json.ts';

/** Written into a saved tokenizer_config.json by a tokenizer in chat-template mode (transformers ignores it). */
export const USE_CHAT_TEMPLATE_KEY = 'hhkit_use_chat_template';

/** The settings hhkit uses, each with the file it came from (for error messages). */
export interface TokenizerCompanions {
  /** File name → its text as read, written back beside tokenizer.json by Tokenizer.save. */
  files: Record<string, string>;
  eosToken?: { token: string; file: string };
  padToken?: { token: string; file: string };
  /** generation_config.json's eos_token_id as a list (HF accepts one id or several). */
  eosTokenIds?: { ids: number[]; file: string };
  padTokenId?: { id: number; file: string };
  chatTemplate?: { template: string; file: string };
  /** hhkit's own key: a stage ran with --chat-template and saved this tokenizer, so later stages use it too. */
  useChatTemplate?: boolean;
}

/** A token field of tokenizer_config.json: a string, or (older files) an AddedToken object with `content`. */
function tokenField(config: JSONObject, key: string): string | undefined {
  const value = config[key];
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value['content'] === 'string') return value['content'];
  return undefined;
}

function parseObject(text: string, path: string): JSONObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TokenizerError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(parsed)) throw new TokenizerError(`${path}: expected a JSON object`);
  return parsed;
}

/**
 * Reads the companion files in `dir` (those present). `chat_template` may be a string or, as transformers
 * writes several templates, a list of `{ name, template }` from which "default" is taken.
 *
 * @example readCompanions('models/SmolLM2-135M').eosToken; // { token: '<|endoftext|>', file: '…/tokenizer_config.json' }
 */
export function readCompanions(dir: string): TokenizerCompanions {
  const out: TokenizerCompanions = { files: {} };
  for (const name of TOKENIZER_COMPANION_FILES) {
    const path = join(dir, name);
    if (existsSync(path)) out.files[name] = readFileSync(path, 'utf8');
  }
  const configText = out.files[TOKENIZER_CONFIG_FILE];
  if (configText !== undefined) {
    const file = join(dir, TOKENIZER_CONFIG_FILE);
    const config = parseObject(configText, file);
    const eos = tokenField(config, 'eos_token');
    if (eos !== undefined) out.eosToken = { token: eos, file };
    const pad = tokenField(config, 'pad_token');
    if (pad !== undefined) out.padToken = { token: pad, file };
    if (config[USE_CHAT_TEMPLATE_KEY] === true) out.useChatTemplate = true;
    const template = config['chat_template'];
    if (typeof template === 'string') out.chatTemplate = { template, file };
    else if (Array.isArray(template)) {
      const named = template.find((t) => isObject(t) && t['name'] === 'default');
      if (isObject(named) && typeof named['template'] === 'string')
        out.chatTemplate = { template: named['template'], file };
    }
  }
  const generationText = out.files[GENERATION_CONFIG_FILE];
  if (generationText !== undefined) {
    const file = join(dir, GENERATION_CONFIG_FILE);
    const generation = parseObject(generationText, file);
    const eos = generation['eos_token_id'];
    const ids = typeof eos === 'number' ? [eos] : Array.isArray(eos) ? eos : [];
    if (ids.some((id) => !Number.isInteger(id))) {
      throw new TokenizerError(
        `${file}: eos_token_id must be an integer or a list of integers, got ${JSON.stringify(eos)}`,
      );
    }
    if (ids.length > 0) out.eosTokenIds = { ids: ids as number[], file };
    const pad = generation['pad_token_id'];
    if (Number.isInteger(pad)) out.padTokenId = { id: pad as number, file };
  }
  return out;
}
