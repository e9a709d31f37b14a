// Child process for distributed.test.ts: one rank of a gloo process group opened from the environment
// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). SCENARIO=collectives prints each collective's result as
// JSON lines; SCENARIO=die has rank 1 exit after the first barrier, and rank 0 report how its next
// all-reduce ended.
import {
  allGatherBytes,
  allReduce,
  allReduceNumbers,
  barrier,
  broadcast,
  destroyProcessGroup,
  GradientReducer,
  initProcessGroup,
  parameterDrift,
  tensor,
} from '../index.ts';

const { rank, worldSize } = initProcessGroup();
const print = (what: string, value: unknown): void => console.log(JSON.stringify({ what, value }));

if (process.env.SCENARIO === 'collectives') {
  // Three tensors of two dtypes; a 16-byte bucket limit forces several buckets.
  const a = tensor([1 + rank, 2 + rank, 3 + rank]);
  const b = tensor([
    [10 * (rank + 1), 0],
    [0, 1],
  ]);
  const c = tensor([rank + 1], { dtype: 'float64' });
  const buckets = allReduce([a, b, c], 'sum', { bucketBytes: 16 });
  print('sum', [a.toArray(), b.toArray(), c.toArray(), buckets]);
  const m = tensor([rank, -rank]);
  allReduce([m], 'max');
  print('max', m.toArray());
  const v = tensor([2 * rank]);
  allReduce([v], 'avg');
  print('avg', v.toArray());
  print('numbers', allReduceNumbers([rank, 0.5], 'sum'));
  // Each rank's bytes, every value 0…255 included, in rank order on every rank.
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * (rank + 1) + 255 * rank) % 256);
  print(
    'gathered',
    allGatherBytes(bytes).map((b) => Array.from(b)),
  );
  try {
    allGatherBytes(new Uint8Array(rank + 1));
    print('ragged', null);
  } catch (e) {
    print('ragged', (e as Error).message);
  }
  const w = tensor([rank, rank, rank]).requiresGrad_();
  broadcast([w], 1);
  print('broadcast', w.toArray());
  barrier();
  print('world', [rank, worldSize]);
  const same = tensor([1, 2, 3]);
  const differs = tensor([rank, 0]);
  print('drift', [parameterDrift([same]), parameterDrift([same, differs])]);
} else if (process.env.SCENARIO === 'reducer') {
  // Two micro-batches, only the second armed: every rank must end with Σ_ranks (a_r + b_r) in w1 and w2,
  // and zeros in the parameter no loss uses. Tiny buckets (8 B first, then 16 B) make several.
  const w1 = tensor([1, 2]).requiresGrad_();
  const w2 = tensor([3, 4, 5, 6]).requiresGrad_();
  const unused = tensor([7]).requiresGrad_();
  const reducer = new GradientReducer([w1, w2, unused], { bucketBytes: 16, firstBucketBytes: 8 });
  const micro = (scale: number): void => {
    const x1 = tensor([scale * (rank + 1), 1]);
    const x2 = tensor([1, scale, rank, 2]);
    w1.mul(x1).sum().add(w2.mul(x2).sum()).backward();
  };
  micro(1);
  reducer.arm();
  micro(10);
  const overlapped = reducer.finish();
  print('reducer', [w1.grad!.toArray(), w2.grad!.toArray(), unused.grad?.toArray() ?? null, overlapped]);
  reducer.dispose();
  // Closing the group frees live reducers: using one afterwards is an error, not a crash.
  const orphan = new GradientReducer([w1]);
  destroyProcessGroup();
  try {
    orphan.arm();
    print('orphan', null);
  } catch (e) {
    print('orphan', (e as Error).message);
  }
} else if (process.env.SCENARIO === 'die') {
  barrier();
  if (rank === 1) process.exit(7);
  const t0 = Date.now();
  try {
    allReduce([tensor([1, 2])]);
    print('error', null);
  } catch (e) {
    print('error', { message: (e as Error).message, seconds: (Date.now() - t0) / 1000 });
  }
}
destroyProcessGroup();
