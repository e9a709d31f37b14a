// hhkit's engine: tensors, autograd, optimisers and safetensors over libtorch (native/).
export * from './distributed.ts';
export * from './dtype.ts';
export * from './finite.ts';
export { NativeBuildError } from './native.ts';
export * from './ops.ts';
export * from './optim.ts';
export * from './runtime.ts';
export * from './safetensors.ts';
export { keep, liveBytes, liveTensors, type Tracked, tidy } from './scope.ts';
export { type NestedArray, type Reduction, setFusedGelu, Tensor } from './tensor.ts';
