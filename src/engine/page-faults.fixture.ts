// Prints the minor page faults of 8 rounds of allocating, filling and freeing a 64 MiB tensor (above glibc's
// largest mmap threshold), after one warm-up round: the figure src/engine/alloc.test.ts compares with and
// without HHKIT_MALLOC=system.
import { zeros } from './index.ts';

const round = () => {
  const t = zeros([16 * 1024 * 1024]); // 64 MiB, written (zeroed) on allocation
  t.dispose();
};
round();
const before = process.resourceUsage().minorPageFault;
for (let i = 0; i < 8; i++) round();
console.log(process.resourceUsage().minorPageFault - before);
