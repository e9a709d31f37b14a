// Checkpoint folders laid out like Hugging Face's, for every family (GPT-2, Llama-like, GPT-NeoX), so a
// model written by `save_pretrained` loads here and ours load there:
//   config.json        the family's config keys (GPT-2's n_layer, n_head, …; Llama's hidden_size, …)
//   model.safetensors  the family's tensor names (GPT-2's Conv1D layout); extra heads beside them (score.weight)
//   tokenizer.json     copied in when given (nn does not read it; src/tokenizer does)
//   hhkit.json         what the model is: kind, lineage, training config, metrics (written last)
// A save writes a temporary sibling folder and renames it over the target, so a crash leaves the old
// checkpoint or the new one, never a mixture. GPT-2 folders written by earlier hhkit versions load as before.
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
  isFloating,
  type Tensor,
  tidy,
} from '../engine/index.ts';
import { writeFileAtomicSync } from '../util/atomic.ts';
import { TOKENIZER_COMPANION_FILES } from '../util/hf-files.ts';
import type { CausalLM, CausalLMConfig } from './causal-lm.ts';
import {
  CHECKPOINT_KINDS,
  CheckpointError,
  CONFIG_FILE,
  type CheckpointKind,
  type HhkitMeta,
  META_FILE,
  readJson,
  refuseNonFinite,
  TOKENIZER_FILE,
  WEIGHTS_FILE,
} from './folder.ts';
import {
  createCausalLM,
  type FamilyConfig,
  familyConfigFromHf,
  hfConfigOf,
  lmConfigOf,
} from './hf-config.ts';
import { INDEX_FILE, tensorRole, weightFiles } from './hf.ts';
import { StateDictError } from './module.ts';

export {
  CHECKPOINT_KINDS,
  CheckpointError,
  type CheckpointKind,
  CONFIG_FILE,
  gptConfigFromHf,
  gptConfigToHf,
  type HhkitMeta,
  META_FILE,
  NonFiniteCheckpointError,
  refuseNonFinite,
  TOKENIZER_FILE,
  WEIGHTS_FILE,
} from './folder.ts';

/** The family and config of a checkpoint folder, without loading the weights. */
export function readCheckpointFamily(dir: string): FamilyConfig {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path))
    throw new CheckpointError(`${path}: missing (a checkpoint folder needs ${CONFIG_FILE})`);
  return familyConfigFromHf(readJson(path), path);
}

/** The family-neutral sizes (context length, width, …) of a checkpoint folder, without loading the weights. */
export function readCheckpointConfig(dir: string): CausalLMConfig {
  return lmConfigOf(readCheckpointFamily(dir));
}

function parseMeta(path: string): HhkitMeta {
  const raw = readJson(path);
  if (!CHECKPOINT_KINDS.includes(raw['kind'] as CheckpointKind)) {
    throw new CheckpointError(
      `${path}: kind must be one of ${CHECKPOINT_KINDS.join(', ')}, got ${JSON.stringify(raw['kind'])}`,
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
  /** A causal LM of any family (GPT-2, Llama-like, GPT-NeoX). */
  model: CausalLM;
  /** Further tensors stored in model.safetensors beside the model's, e.g. prefixKeys(head.stateDict(), 'score'). */
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
    const dtype = model.dtype;
    writeFileAtomicSync(
      join(tmp, CONFIG_FILE),
      `${JSON.stringify({ ...hfConfigOf(model, dtype), ...opts.hfConfig }, null, 2)}\n`,
    );
    const bytes = tidy(() => {
      const tensors = model.stateDict();
      for (const [name, t] of Object.entries(opts.extra ?? {})) {
        if (name in tensors)
          throw new CheckpointError(`saveCheckpoint: extra tensor '${name}' collides with a model tensor`);
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
      // tokenizer_config.json / generation_config.json beside it say which tokens are eos and pad and hold
      // the chat template: a user's folder keeps them through every stage.
      for (const name of TOKENIZER_COMPANION_FILES) {
        const companion = join(dirname(opts.tokenizerPath), name);
        if (!existsSync(companion)) continue;
        copyFileSync(companion, join(tmp, name));
        fsyncPath(join(tmp, name));
      }
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
  /** dtype of the parameters; default float32 (bf16/fp16 folders are upcast for training). */
  dtype?: DType;
  /** Error on missing model tensors (default true). Mis-shaped tensors are always errors. */
  strict?: boolean;
  /**
   * Load weights that hold NaN or ±Inf (default false: a NonFiniteCheckpointError naming the file and
   * the tensor). The check is one isfinite-all per tensor as it is read.
   */
  allowNonFinite?: boolean;
}

export interface LoadedCheckpoint {
  /** The model, of the folder's family; stages use it through the CausalLM interface only. */
  model: CausalLM;
  /** The family and its config, as read from config.json. */
  family: FamilyConfig;
  /** hhkit.json, or null for a plain Hugging Face folder. */
  meta: HhkitMeta | null;
  /** Tensors of the weight files that are not the model's (e.g. score.weight), on the model's device. */
  extra: Record<string, Tensor>;
  tokenizerPath: string | null;
}

/**
 * Loads a checkpoint folder written by saveCheckpoint or by Hugging Face (`save_pretrained` of GPT-2,
 * Llama, Mistral, Qwen2/3 or GPT-NeoX; model.safetensors or shards with their index).
 *
 * @example const { model, meta, tokenizerPath } = loadCheckpoint('runs/lm/ckpt');
 */
export function loadCheckpoint(dir: string, opts: LoadCheckpointOptions = {}): LoadedCheckpoint {
  const target = resolve(dir);
  recover(target);
  if (!existsSync(target)) throw new CheckpointError(`${dir}: checkpoint folder not found`);
  const family = readCheckpointFamily(target);
  const weightsPath = join(target, WEIGHTS_FILE);
  if (!existsSync(weightsPath) && !existsSync(join(target, INDEX_FILE))) {
    const bin = existsSync(join(target, 'pytorch_model.bin'))
      ? ' (pytorch_model.bin is not read: re-save it with safe_serialization=True)'
      : '';
    throw new CheckpointError(`${weightsPath}: missing${bin}`);
  }
  const metaPath = join(target, META_FILE);
  const meta = existsSync(metaPath) ? parseMeta(metaPath) : null;
  const tokenizerPath = existsSync(join(target, TOKENIZER_FILE)) ? join(target, TOKENIZER_FILE) : null;
  const { model, extra } = tidy(() => {
    const own: Record<string, Tensor> = {};
    const extra: Record<string, Tensor> = {};
    let stored: DType = 'float32';
    for (const file of weightFiles(target)) {
      const { tensors } = decodeSafetensors(readFileSync(file), file);
      if (!opts.allowNonFinite) refuseNonFinite(file, tensors);
      for (const [name, t] of Object.entries(tensors)) {
        const role = tensorRole(family.family, name);
        if (role === 'model') own[name] = t;
        else if (role === 'extra') extra[name] = opts.device ? t.to({ device: opts.device }) : t;
      }
    }
    stored = Object.values(own).find((t) => isFloating(t.dtype))?.dtype ?? 'float32';
    // float32 unless asked otherwise: the weights of a float32 folder are loaded without a cast.
    const dtype = opts.dtype ?? (stored === 'float32' ? undefined : 'float32');
    const model = createCausalLM(family, { device: opts.device, dtype });
    try {
      model.loadStateDict(own, { strict: opts.strict ?? true });
    } catch (err) {
      if (err instanceof StateDictError) throw new CheckpointError(`${weightsPath}: ${err.message}`);
      throw err;
    }
    return { model, extra };
  });
  return { model, family, meta, extra, tokenizerPath };
}
