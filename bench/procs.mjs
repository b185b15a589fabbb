// bench/procs.mjs: what the Node benchmarks share: `--key value` arguments, the sluice
// binary to measure, and processes started from it (resolved once they print a line that
// matches, killed when the benchmark exits however it exits).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));

// process.argv's `--key value` pairs as an object.
export function parseArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(argv.reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
}

export function sluiceBin(args) {
  return args.sluice ?? process.env.SLUICE_BIN ?? path.join(here, '../build/release/sluice');
}

const procs = new Set();
process.on('exit', () => {
  for (const p of procs) p.kill('SIGKILL');
});

// Starts `bin argv...`; resolves {p, m} with the first match of `re` on its stdout, rejects
// (with the tail of its output) if it exits first.
export function start(bin, argv, re) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.add(p);
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(re);
      if (m) resolve({ p, m });
    });
    p.stderr.on('data', (d) => (out += d));
    p.on('exit', (code) => {
      procs.delete(p);
      reject(new Error(`${argv[0]} exited ${code}: ${out.slice(-500)}`));
    });
  });
}

// A seeded PRNG (mulberry32) and a small vocabulary: the benchmarks' reproducible prompts.
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export const WORDS = 'the a model answer token stream batch cache prompt server user system code test data value time run order'.split(' ');
