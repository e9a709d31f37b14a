// hhkit's model layer: Module, GPT-2 layers, the GPT, scalar heads, KV cache and checkpoint folders.
export * from './attention.ts';
export * from './checkpoint.ts';
export * from './generate.ts';
export * from './gpt.ts';
export * from './heads.ts';
export * from './kvcache.ts';
export * from './layers.ts';
export * from './module.ts';
