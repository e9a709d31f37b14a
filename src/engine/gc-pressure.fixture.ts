// Child process for scope.test.ts: allocates 3000 × 1 MiB tensors without disposing them, in async code
// that yields to the event loop now and then (as a server or an async pipeline does), and prints the
// peak RSS in MiB. Native memory is reported to V8, so the GC collects them as it goes.
import { setImmediate as tick } from 'node:timers/promises';
import { zeros } from '../index.ts';

let peak = 0;
for (let i = 0; i < 3000; i++) {
  zeros([256, 1024]).add(1);
  if (i % 20 === 0) {
    peak = Math.max(peak, process.memoryUsage().rss);
    await tick();
  }
}
console.log(Math.round(peak / 2 ** 20));
