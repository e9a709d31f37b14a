// The hhkit library: `import { … } from 'hhkit'`.
export * from './engine/index.ts';
