// hhkit's model layer: Module, layers, the CausalLM interface and its families (GPT-2, Llama-like, GPT-NeoX), scalar heads, KV cache, checkpoint and Hugging Face folders.
export * from './attention.ts';
export * from './checkpoint.ts';
export * from './generate.ts';
export * from './gpt.ts';
export * from './heads.ts';
export * from './kvcache.ts';
export * from './layers.ts';
export * from './module.ts';
export * from './causal-lm.ts';
export * from './gpt-neox.ts';
export * from './hf.ts';
export * from './hf-config.ts';
export * from './llama.ts';
export * from './rope.ts';
