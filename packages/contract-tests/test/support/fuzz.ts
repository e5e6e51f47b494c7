import type fc from 'fast-check'

// One seed and one number of runs for every property, so that `npm test` is reproducible and a
// longer run is one variable away: FUZZ_RUNS=10000 npx vitest run. A failure prints its seed and
// counterexample path; FUZZ_SEED=<seed> replays it.
//
// The default, 40 runs, is sized for `npm test` on two cores shared with other work. The slowest
// property takes 0.3 s alone (the three fuzz files 5.6 s in all); `npm run stress` (npm test
// beside two busy processes, every workspace's tests at once) slows a test down up to 20 times,
// which keeps it well under a third of its timeout. At 100 runs the slowest took 2.2 s alone: it
// grows faster than the runs, since every run snapshots every run row. Most of what the fuzz
// files once spent (28.7 s alone) was building arbitraries, not running them: derive.ts builds
// one arbitrary per pattern and avoids fast-check's 'binary' unit.

const integerFromEnv = (name: string, fallback: number): number => {
  const text = process.env[name]
  if (text === undefined || text === '') return fallback
  const value = Number(text)
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(text)}`)
  return value
}

export const FUZZ_SEED = integerFromEnv('FUZZ_SEED', 20_250_101)
export const FUZZ_RUNS = integerFromEnv('FUZZ_RUNS', 40)

/** fast-check parameters: the suite's seed, and `FUZZ_RUNS` scaled by `share` (at least `min`). */
export function fuzz<T>(share = 1, min = 1): fc.Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: Math.max(min, Math.round(FUZZ_RUNS * share)) }
}

/**
 * A vitest timeout that grows with the number of runs (each run is one or a few requests of a
 * few milliseconds; on two cores shared with other work, up to 50 ms), at least 60 s. It only
 * guards against a suite that crawls; a request that hangs fails on its own after
 * REQUEST_TIMEOUT_MS.
 */
export const fuzzTimeout = (share = 1, perRunMs = 100) => Math.max(60_000, Math.round(FUZZ_RUNS * share) * perRunMs)

/** How long one request may take before it counts as a hang. */
export const REQUEST_TIMEOUT_MS = 5_000
