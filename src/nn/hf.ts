// Hugging Face model folders as they are: config.json, then model.safetensors or the shards
// model-0000k-of-0000n.safetensors listed by model.safetensors.index.json (weight_map). `loadCausalLM`
// dispatches on config.json's model_type to the family's class; `saveCausalLM` writes what
// `save_pretrained(safe_serialization=True)` writes (same names, config keys and dtype; a tied head not stored).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DType,
  decodeSafetensors,
  ELEMENT_SIZE,
  encodeSafetensors,
  isFloating,
  keep,
  type Tensor,
  tidy,
} from '../engine/index.ts';
import { writeFileAtomicSync } from '../util/atomic.ts';
import type { CausalLM } from './causal-lm.ts';
import {
  CheckpointError,
  type HhkitMeta,
  META_FILE,
  readJson,
  refuseNonFinite,
  TOKENIZER_FILE,
} from './folder.ts';
import { createCausalLM, type FamilyConfig, familyConfigFromHf, hfConfigOf } from './hf-config.ts';
import { StateDictError } from './module.ts';

export const INDEX_FILE = 'model.safetensors.index.json';

/** A folder whose weights lack tensors the model needs; `missing` lists their names. */
export class MissingTensorsError extends CheckpointError {
  override name = 'MissingTensorsError';
  constructor(
    message: string,
    readonly missing: string[],
  ) {
    super(message);
  }
}

// Which tensor names belong to the model (the rest, e.g. score.weight, are returned as `extra`), and which
// are buffers of older transformers versions that are recomputed rather than loaded.
const MODEL_KEY: Record<FamilyConfig['family'], RegExp> = {
  gpt2: /^(transformer\.)?(wte|wpe|h\.\d+|ln_f)\.|^lm_head\.weight$/,
  llama: /^model\.|^lm_head\.weight$/,
  gpt_neox: /^gpt_neox\.|^embed_out\.weight$/,
};
const IGNORED = /\.rotary_emb\.inv_freq$|\.(attn|attention)\.(bias|masked_bias)$/;

/**
 * What a stored tensor is to a family: one of its own ('model'), a buffer of older transformers versions
 * that is recomputed rather than loaded ('ignored'), or something else such as a scalar head ('extra').
 */
export function tensorRole(family: FamilyConfig['family'], name: string): 'model' | 'ignored' | 'extra' {
  if (IGNORED.test(name)) return 'ignored';
  return MODEL_KEY[family].test(name) ? 'model' : 'extra';
}

/** The safetensors files of a folder: model.safetensors, or the shards its index names (in order). */
export function weightFiles(dir: string): string[] {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const index = join(dir, INDEX_FILE);
  if (existsSync(index)) {
    const map = readJson(index)['weight_map'];
    if (typeof map !== 'object' || map === null) throw new CheckpointError(`${index}: no weight_map`);
    const files = [...new Set(Object.values(map as Record<string, string>))].sort();
    for (const f of files) {
      if (typeof f !== 'string' || f.includes('/') || !existsSync(join(dir, f))) {
        throw new CheckpointError(`${index}: shard ${JSON.stringify(f)} is missing from ${dir}`);
      }
    }
    return files.map((f) => join(dir, f));
  }
  const bin = existsSync(join(dir, 'pytorch_model.bin'))
    ? ' (pytorch_model.bin is not read: re-save it with safe_serialization=True)'
    : '';
  throw new CheckpointError(`${dir}: no model.safetensors or ${INDEX_FILE}${bin}`);
}

export interface LoadCausalLMOptions {
  device?: string;
  /** dtype of the parameters; default: the dtype the weights are stored in (bf16 stays bf16). */
  dtype?: DType;
  /** Shorthand for dtype 'float32' (bf16/fp16 weights upcast). */
  upcast?: boolean;
  /** Error on missing tensors (default true). */
  strict?: boolean;
  /** Load weights holding NaN/±Inf (default false: NonFiniteCheckpointError). */
  allowNonFinite?: boolean;
  /** Seeds the initialisation of tensors that strict: false leaves missing. */
  seed?: number;
}

export interface LoadedCausalLM {
  model: CausalLM;
  /** The family and its config, as parsed from config.json. */
  family: FamilyConfig;
  /** config.json as it is (bos/eos ids and other keys the model does not use). */
  hfConfig: Record<string, unknown>;
  /** dtype the weights were stored in (of the embedding). */
  storedDtype: DType;
  /** hhkit.json when present. */
  meta: HhkitMeta | null;
  /** Tensors that are not the model's (e.g. score.weight), on the model's device. */
  extra: Record<string, Tensor>;
  tokenizerPath: string | null;
}

/**
 * Loads a Hugging Face folder of any supported family (gpt2, llama, mistral, qwen2, qwen3, gpt_neox).
 *
 * @example const { model } = loadCausalLM('models/SmolLM2-135M', { upcast: true }); model.forward(ids).logits
 */
export function loadCausalLM(dir: string, opts: LoadCausalLMOptions = {}): LoadedCausalLM {
  if (!existsSync(dir)) throw new CheckpointError(`${dir}: model folder not found`);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath))
    throw new CheckpointError(`${configPath}: missing (a model folder needs config.json)`);
  const hfConfig = readJson(configPath);
  const family = familyConfigFromHf(hfConfig, configPath);
  const files = weightFiles(dir);
  const metaPath = join(dir, META_FILE);
  const meta = existsSync(metaPath) ? (readJson(metaPath) as HhkitMeta) : null;
  const tokenizerPath = existsSync(join(dir, TOKENIZER_FILE)) ? join(dir, TOKENIZER_FILE) : null;
  return tidy(() => {
    const own: Record<string, Tensor> = {};
    const extra: Record<string, Tensor> = {};
    for (const file of files) {
      const { tensors } = decodeSafetensors(readFileSync(file), file);
      if (!opts.allowNonFinite) refuseNonFinite(file, tensors);
      for (const [name, t] of Object.entries(tensors)) {
        const role = tensorRole(family.family, name);
        if (role === 'model') own[name] = t;
        else if (role === 'extra') extra[name] = t;
      }
    }
    const stored = Object.values(own).find((t) => isFloating(t.dtype))?.dtype ?? 'float32';
    const dtype = opts.dtype ?? (opts.upcast ? 'float32' : stored);
    const model = createCausalLM(family, { device: opts.device, dtype, seed: opts.seed });
    try {
      model.loadStateDict(own, { strict: opts.strict ?? true });
    } catch (err) {
      if (err instanceof StateDictError && err.missing.length && !err.mismatched.length) {
        throw new MissingTensorsError(
          `${dir}: ${family.family} model (model_type ${JSON.stringify(hfConfig['model_type'] ?? 'gpt2')}) lacks ${err.missing.length} tensor(s): ${err.missing.join(', ')}`,
          err.missing,
        );
      }
      if (err instanceof StateDictError) throw new CheckpointError(`${dir}: ${err.message}`);
      throw err;
    }
    for (const [k, t] of Object.entries(extra))
      extra[k] = keep(opts.device ? t.to({ device: opts.device }) : t);
    return { model, family, hfConfig, storedDtype: stored, meta, extra, tokenizerPath };
  });
}

export interface SaveCausalLMOptions {
  /** dtype written (and torch_dtype in config.json); default the model's. Non-float tensors are kept. */
  dtype?: DType;
  /** Split into model-0000k-of-0000n.safetensors shards of at most this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** More tensors beside the model's (e.g. score.weight). */
  extra?: Record<string, Tensor>;
  /** More config.json keys (bos_token_id, eos_token_id, …). */
  hfConfig?: Record<string, unknown>;
}

/**
 * Writes `model` as `save_pretrained` does; an existing folder's weight files are replaced.
 *
 * @example saveCausalLM('out/policy', model, { dtype: 'bfloat16', hfConfig: { eos_token_id: 2 } });
 */
export function saveCausalLM(dir: string, model: CausalLM, opts: SaveCausalLMOptions = {}): void {
  const dtype = opts.dtype ?? model.dtype;
  const maxShard = opts.maxShardBytes ?? 5e9;
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) {
    if (/^model(-\d+-of-\d+)?\.safetensors$/.test(f) || f === INDEX_FILE) rmSync(join(dir, f));
  }
  writeFileAtomicSync(
    join(dir, 'config.json'),
    `${JSON.stringify({ ...hfConfigOf(model, dtype), ...opts.hfConfig }, null, 2)}\n`,
  );
  tidy(() => {
    const tensors: Record<string, Tensor> = model.stateDict();
    for (const [k, t] of Object.entries(opts.extra ?? {})) {
      if (k in tensors)
        throw new CheckpointError(`saveCausalLM: extra tensor '${k}' collides with a model tensor`);
      tensors[k] = t;
    }
    for (const [k, t] of Object.entries(tensors))
      if (isFloating(t.dtype) && t.dtype !== dtype) tensors[k] = t.to(dtype);
    // Shards in name order, each at most maxShard bytes (a larger single tensor gets a shard of its own).
    const shards: string[][] = [[]];
    let size = 0;
    let total = 0;
    for (const name of Object.keys(tensors).sort()) {
      const bytes = tensors[name]!.numel * ELEMENT_SIZE[tensors[name]!.dtype];
      if (size > 0 && size + bytes > maxShard) {
        shards.push([]);
        size = 0;
      }
      shards.at(-1)!.push(name);
      size += bytes;
      total += bytes;
    }
    const pick = (names: string[]) => Object.fromEntries(names.map((n) => [n, tensors[n]!]));
    if (shards.length === 1) {
      writeFileAtomicSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
      return;
    }
    const n = shards.length;
    const weightMap: Record<string, string> = {};
    shards.forEach((names, i) => {
      const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
      writeFileAtomicSync(join(dir, file), encodeSafetensors(pick(names), { format: 'pt' }));
      for (const name of names) weightMap[name] = file;
    });
    writeFileAtomicSync(
      join(dir, INDEX_FILE),
      `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`,
    );
  });
}
