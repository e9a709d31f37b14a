// Checkpoint folders laid out like Hugging Face's, so a GPT-2 written by `save_pretrained` loads here and
// ours load there:
//   config.json        GPT-2 config keys (model_type "gpt2", n_layer, n_head, n_embd, n_positions, …)
//   model.safetensors  GPT-2 tensor names, Conv1D layout; extra heads beside them (e.g. score.weight)
//   tokenizer.json     copied in when given (nn does not read it; src/tokenizer does)
//   hhkit.json         what the model is: kind, lineage, training config, metrics (written last)
// A save writes a temporary sibling folder and renames it over the target, so a crash leaves the old
// checkpoint or the new one, never a mixture.
import {
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type DType,
  decodeSafetensors,
  encodeSafetensors,
  firstNonFinite,
  type Tensor,
  tidy,
} from '../engine/index.ts';
import { writeFileAtomicSync } from '../util/atomic.ts';
import { HhkitError } from '../util/errors.ts';
import { GPT, type GPTConfig, GPTConfigError, validateGPTConfig } from './gpt.ts';
import { StateDictError } from './module.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const TOKENIZER_FILE = 'tokenizer.json';
export const META_FILE = 'hhkit.json';

export type CheckpointKind = 'lm' | 'pm' | 'policy';
const KINDS: readonly CheckpointKind[] = ['lm', 'pm', 'policy'];

/** hhkit.json: what a checkpoint is and where it came from. Other keys (e.g. step) are kept as they are. */
export interface HhkitMeta {
  kind: CheckpointKind;
  /** Parent checkpoints (paths or ids), oldest first: e.g. [lm, pmp] for a PM finetuned from a PMP model. */
  lineage: string[];
  /** The training config that produced these weights. */
  training?: Record<string, unknown>;
  /** Final or latest metrics (loss, accuracy, …). */
  metrics?: Record<string, unknown>;
  /** ISO time; filled in by saveCheckpoint when absent. */
  createdAt?: string;
  [key: string]: unknown;
}

/** A checkpoint that cannot be read or written; the message names the file and what is wrong (CLI exit 2). */
export class CheckpointError extends HhkitError {
  override name = 'CheckpointError';

  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}

/**
 * A checkpoint whose weights hold NaN or ±Inf (a diverged run, or corrupted bytes behind a valid header);
 * loaders refuse it unless asked with `allowNonFinite` (`--allow-nonfinite`).
 */
export class NonFiniteCheckpointError extends CheckpointError {
  override name = 'NonFiniteCheckpointError';
}

// ---- config.json ----

/**
 * GPT-2 config.json keys for `config` (what transformers' GPT2Config writes).
 *
 * @example gptConfigToHf(gptPresets.tiny).n_embd // 16
 */
export function gptConfigToHf(config: GPTConfig, dtype: DType = 'float32'): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    activation_function: 'gelu_new',
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_embd: config.nEmbd,
    n_positions: config.nPositions,
    n_ctx: config.nPositions,
    n_inner: null,
    vocab_size: config.vocabSize,
    layer_norm_epsilon: config.layerNormEps ?? 1e-5,
    attn_pdrop: config.dropout,
    embd_pdrop: config.dropout,
    resid_pdrop: config.dropout,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
    use_cache: true,
    torch_dtype: dtype,
  };
}

// Activations equal to GPT-2's tanh-approximated GELU.
const TANH_GELUS = new Set(['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast']);

/**
 * The GPTConfig of a GPT-2 config.json object; throws a CheckpointError naming `source` and the key for
 * anything hhkit's GPT cannot represent.
 */
export function gptConfigFromHf(hf: Record<string, unknown>, source = CONFIG_FILE): GPTConfig {
  const fail = (why: string): never => {
    throw new CheckpointError(`${source}: ${why}`);
  };
  if (hf['model_type'] !== undefined && hf['model_type'] !== 'gpt2') {
    fail(`model_type is ${JSON.stringify(hf['model_type'])}; only "gpt2" is supported`);
  }
  const int = (...keys: string[]): number => {
    for (const k of keys) {
      const v = hf[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
        fail(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
      return v as number;
    }
    return fail(`missing ${keys.join(' / ')}`);
  };
  const num = (key: string, fallback: number): number => {
    const v = hf[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number') fail(`${key} must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const act = hf['activation_function'] ?? 'gelu_new';
  if (typeof act !== 'string' || !TANH_GELUS.has(act)) {
    fail(
      `activation_function ${JSON.stringify(act)} is not supported (hhkit's GPT uses gelu_new, the tanh GELU)`,
    );
  }
  const config: GPTConfig = {
    nLayer: int('n_layer', 'num_hidden_layers'),
    nHead: int('n_head', 'num_attention_heads'),
    nEmbd: int('n_embd', 'hidden_size'),
    nPositions: int('n_positions', 'n_ctx', 'max_position_embeddings'),
    vocabSize: int('vocab_size'),
    // HF's GPT2Config defaults every dropout to 0.1.
    dropout: num('resid_pdrop', num('embd_pdrop', num('attn_pdrop', 0.1))),
    layerNormEps: num('layer_norm_epsilon', 1e-5),
  };
  const inner = hf['n_inner'];
  if (inner !== undefined && inner !== null && inner !== 4 * config.nEmbd) {
    fail(`n_inner ${JSON.stringify(inner)} is not supported (hhkit's MLP is 4·n_embd = ${4 * config.nEmbd})`);
  }
  if (hf['scale_attn_weights'] === false) fail('scale_attn_weights false is not supported');
  if (hf['scale_attn_by_inverse_layer_idx'] === true)
    fail('scale_attn_by_inverse_layer_idx is not supported');
  if (hf['tie_word_embeddings'] === false)
    fail('tie_word_embeddings false is not supported (hhkit ties lm_head to wte)');
  try {
    validateGPTConfig(config);
  } catch (err) {
    if (err instanceof GPTConfigError) fail(err.message);
    throw err;
  }
  return config;
}

function readJson(path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CheckpointError(`${path}: cannot read JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CheckpointError(`${path}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** The GPTConfig of a checkpoint folder, without loading the weights. */
export function readCheckpointConfig(dir: string): GPTConfig {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path))
    throw new CheckpointError(`${path}: missing (a checkpoint folder needs ${CONFIG_FILE})`);
  return gptConfigFromHf(readJson(path), path);
}

function parseMeta(path: string): HhkitMeta {
  const raw = readJson(path);
  if (!KINDS.includes(raw['kind'] as CheckpointKind)) {
    throw new CheckpointError(
      `${path}: kind must be one of ${KINDS.join(', ')}, got ${JSON.stringify(raw['kind'])}`,
    );
  }
  const lineage = raw['lineage'] ?? [];
  if (!Array.isArray(lineage) || !lineage.every((x) => typeof x === 'string')) {
    throw new CheckpointError(`${path}: lineage must be an array of strings`);
  }
  const { format: _format, version: _version, ...meta } = raw;
  return { ...meta, kind: raw['kind'] as CheckpointKind, lineage: lineage as string[] };
}

// ---- save ----

export interface SaveCheckpointOptions {
  model: GPT;
  /** Further tensors stored in model.safetensors beside the GPT's, e.g. prefixKeys(head.stateDict(), 'score'). */
  extra?: Record<string, Tensor>;
  meta: HhkitMeta;
  /** A tokenizer.json to copy in. */
  tokenizerPath?: string;
  /** Other files written into the folder in the same atomic step (e.g. optimizer state for --resume). */
  files?: Record<string, string | Uint8Array>;
  /** Extra config.json keys (e.g. bos_token_id, eos_token_id). */
  hfConfig?: Record<string, unknown>;
}

function fsyncPath(path: string): void {
  try {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Directories cannot be fsynced on some platforms; the renames are still atomic.
  }
}

const siblingPrefix = (dir: string, what: 'tmp' | 'old'): string => `.${basename(dir)}.${what}-`;

/**
 * Writes a checkpoint folder atomically (a temp sibling folder renamed over `dir`).
 *
 * @example saveCheckpoint('runs/lm/ckpt', { model, meta: { kind: 'lm', lineage: [] }, tokenizerPath: 'tok.json' });
 */
export function saveCheckpoint(dir: string, opts: SaveCheckpointOptions): void {
  const target = resolve(dir);
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const stamp = `${process.pid}-${Date.now().toString(36)}`;
  const tmp = join(parent, `${siblingPrefix(target, 'tmp')}${stamp}`);
  mkdirSync(tmp);
  try {
    const { model } = opts;
    const dtype = model.wte.dtype;
    writeFileAtomicSync(
      join(tmp, CONFIG_FILE),
      `${JSON.stringify({ ...gptConfigToHf(model.config, dtype), ...opts.hfConfig }, null, 2)}\n`,
    );
    const bytes = tidy(() => {
      const tensors = model.stateDict();
      for (const [name, t] of Object.entries(opts.extra ?? {})) {
        if (name in tensors)
          throw new CheckpointError(`saveCheckpoint: extra tensor '${name}' collides with a GPT tensor`);
        tensors[name] = t;
      }
      // format "pt" is what transformers checks before loading a safetensors file.
      return encodeSafetensors(tensors, { format: 'pt', writer: 'hhkit' });
    });
    writeFileAtomicSync(join(tmp, WEIGHTS_FILE), bytes);
    if (opts.tokenizerPath) {
      if (!existsSync(opts.tokenizerPath))
        throw new CheckpointError(`${opts.tokenizerPath}: tokenizer file not found`);
      copyFileSync(opts.tokenizerPath, join(tmp, TOKENIZER_FILE));
      fsyncPath(join(tmp, TOKENIZER_FILE));
    }
    for (const [name, data] of Object.entries(opts.files ?? {})) {
      if ([CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, META_FILE].includes(name) || name.includes('/')) {
        throw new CheckpointError(`saveCheckpoint: files may not be named '${name}'`);
      }
      writeFileAtomicSync(join(tmp, name), data);
    }
    const meta = {
      format: 'hhkit',
      version: 1,
      ...opts.meta,
      createdAt: opts.meta.createdAt ?? new Date().toISOString(),
    };
    writeFileAtomicSync(join(tmp, META_FILE), `${JSON.stringify(meta, null, 2)}\n`); // last: marks tmp complete
    fsyncPath(tmp);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  // Swap: old → backup, tmp → target, drop backup. A crash between the renames is repaired by loadCheckpoint.
  const backup = join(parent, `${siblingPrefix(target, 'old')}${stamp}`);
  const hadOld = existsSync(target);
  if (hadOld) renameSync(target, backup);
  renameSync(tmp, target);
  fsyncPath(parent);
  if (hadOld) rmSync(backup, { recursive: true, force: true });
}

/** If a save crashed between its two renames, puts the newest complete folder back at `target`. */
function recover(target: string): void {
  if (existsSync(target)) return;
  const parent = dirname(target);
  if (!existsSync(parent)) return;
  const names = readdirSync(parent);
  const pick = (what: 'tmp' | 'old') =>
    names
      .filter((n) => n.startsWith(siblingPrefix(target, what)) && existsSync(join(parent, n, META_FILE)))
      .sort()
      .at(-1);
  const found = pick('tmp') ?? pick('old');
  if (found) renameSync(join(parent, found), target);
}

// ---- load ----

export interface LoadCheckpointOptions {
  device?: string;
  dtype?: DType;
  /** Error on missing GPT tensors (default true). Mis-shaped tensors are always errors. */
  strict?: boolean;
  /**
   * Load weights that hold NaN or ±Inf (default false: a NonFiniteCheckpointError naming the file and
   * the tensor). The check is one isfinite-all per tensor as it is read.
   */
  allowNonFinite?: boolean;
}

export interface LoadedCheckpoint {
  model: GPT;
  config: GPTConfig;
  /** hhkit.json, or null for a plain Hugging Face folder. */
  meta: HhkitMeta | null;
  /** Tensors of model.safetensors that are not the GPT's (e.g. score.weight), on the model's device. */
  extra: Record<string, Tensor>;
  tokenizerPath: string | null;
}

/**
 * Throws NonFiniteCheckpointError when a tensor of `path` (decoded) holds NaN or ±Inf.
 *
 * @example refuseNonFinite('runs/lm/checkpoint/model.safetensors', decodeSafetensors(bytes).tensors);
 */
export function refuseNonFinite(path: string, tensors: Record<string, Tensor>): void {
  const found = firstNonFinite(Object.entries(tensors));
  if (found) {
    throw new NonFiniteCheckpointError(
      `${path}: tensor '${found.name}' holds ${found.count} NaN/±Inf value(s) of ${found.numel}; the file is corrupt or comes from a run that diverged. Load an earlier checkpoint, or pass --allow-nonfinite (allowNonFinite: true) to load it anyway`,
    );
  }
}

// GPT-2 tensor names, with or without the `transformer.` prefix, plus the tied lm_head.
const GPT_KEY = /^(transformer\.)?(wte|wpe|h\.\d+|ln_f)\.|^lm_head\.weight$/;

/**
 * Loads a checkpoint folder written by saveCheckpoint or by Hugging Face (GPT2LMHeadModel.save_pretrained).
 *
 * @example const { model, meta, tokenizerPath } = loadCheckpoint('runs/lm/ckpt');
 */
export function loadCheckpoint(dir: string, opts: LoadCheckpointOptions = {}): LoadedCheckpoint {
  const target = resolve(dir);
  recover(target);
  if (!existsSync(target)) throw new CheckpointError(`${dir}: checkpoint folder not found`);
  const config = readCheckpointConfig(target);
  const weightsPath = join(target, WEIGHTS_FILE);
  if (!existsSync(weightsPath)) {
    const bin = existsSync(join(target, 'pytorch_model.bin'))
      ? ' (pytorch_model.bin is not read: re-save it with safe_serialization=True)'
      : '';
    throw new CheckpointError(`${weightsPath}: missing${bin}`);
  }
  const metaPath = join(target, META_FILE);
  const meta = existsSync(metaPath) ? parseMeta(metaPath) : null;
  const tokenizerPath = existsSync(join(target, TOKENIZER_FILE)) ? join(target, TOKENIZER_FILE) : null;
  const { model, extra } = tidy(() => {
    const { tensors } = decodeSafetensors(readFileSync(weightsPath), weightsPath);
    if (!opts.allowNonFinite) refuseNonFinite(weightsPath, tensors);
    const gptTensors: Record<string, Tensor> = {};
    const extra: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(tensors)) {
      if (GPT_KEY.test(name)) gptTensors[name] = t;
      else if (!/\.attn\.(bias|masked_bias)$/.test(name))
        extra[name] = opts.device ? t.to({ device: opts.device }) : t;
    }
    const model = new GPT(config, { device: opts.device, dtype: opts.dtype });
    try {
      model.loadStateDict(gptTensors, { strict: opts.strict ?? true });
    } catch (err) {
      if (err instanceof StateDictError) throw new CheckpointError(`${weightsPath}: ${err.message}`);
      throw err;
    }
    return { model, extra };
  });
  return { model, config: model.config, meta, extra, tokenizerPath };
}
