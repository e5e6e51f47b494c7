#!/usr/bin/env node
// `npm run stress`: the sweep for timing assumptions. Runs `npm test` (turbo's cache off, so every
// suite runs) several times in a row while busy processes load every core, and says for each run
// its count and time, then the slowest tests of all the runs beside their timeouts. A test that
// fails only here assumes an order or a timing the code does not guarantee.
//
//   npm run stress                      five runs of `npm test` beside two busy processes
//   npm run stress -- --runs 3 --busy 4
//   npm run stress -- -- npx vitest run --project sqlite     (in apps/api: another command, run as is)
//
// The busy processes are killed when the sweep ends or is stopped (Ctrl-C); each run's output is
// kept in reports/stress/ (ignored by git) for the failures to be read.
import { spawn } from 'node:child_process'
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '5' },
    busy: { type: 'string', default: String(Math.max(2, availableParallelism())) },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help) {
  console.log(
    readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('\nimport ')[0]
      .replace(/^#!.*\n/, ''),
  )
  process.exit(0)
}
const runs = Number(values.runs)
const busy = Number(values.busy)
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(busy) || busy < 0) {
  console.error('--runs takes a whole number from 1, --busy one from 0')
  process.exit(2)
}
const command = positionals.length > 0 ? positionals : ['node', 'scripts/test.mjs', '--force']
const cwd = process.cwd()
const logs = join(root, 'reports/stress')
rmSync(logs, { recursive: true, force: true })
mkdirSync(logs, { recursive: true })

// A busy process spins on one core; it exits with us (its stdin is our pipe) even if we are killed.
const spinners = Array.from({ length: busy }, () =>
  spawn(process.execPath, ['-e', 'process.stdin.on("close", () => process.exit()); for (;;) {}'], {
    stdio: ['pipe', 'ignore', 'inherit'],
  }),
)
const stopSpinners = () => spinners.forEach((s) => s.kill('SIGKILL'))
let current
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopSpinners()
    current?.kill(signal)
    process.exit(130)
  })
}

console.log(`${runs} runs of \`${command.join(' ')}\` beside ${busy} busy processes; logs in ${relative(cwd, logs)}/`)
const results = []
/** The slowest tests of all runs: file and title → the longest time and the timeout. */
const slowest = new Map()
for (let i = 1; i <= runs; i++) {
  const started = Date.now()
  const log = join(logs, `run-${i}.log`)
  const { code, output } = await runOnce(command, log)
  const seconds = (Date.now() - started) / 1000
  const summary = [...output.matchAll(/^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/gm)].at(-1)
  const failures = [...output.matchAll(/^ +(?:FAIL|×) .*$/gm)].map((m) => m[0].trim())
  results.push({ run: i, code, seconds, summary: summary?.[0] ?? `no summary (exit code ${code})`, failures })
  console.log(`run ${i}: ${results.at(-1).summary} in ${minutes(seconds)}${code === 0 ? '' : ` (exit code ${code})`}`)
  for (const failure of [...new Set(failures)].slice(0, 20)) console.log(`  ${failure}`)
  collectSlowest(slowest)
}
stopSpinners()

console.log('\nSlowest tests of all runs (the longest of each, and its share of its own timeout):')
for (const [name, { ms, timeout }] of [...slowest].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) {
  const share = timeout ? ` = ${((ms / timeout) * 100).toFixed(0)}% of ${timeout / 1000} s` : ''
  console.log(`  ${(ms / 1000).toFixed(1).padStart(6)} s${share}  ${name}`)
}
const failed = results.filter((r) => r.code !== 0)
console.log(`\n${runs - failed.length} of ${runs} runs green; ${results.map((r) => minutes(r.seconds)).join(', ')}`)
writeFileSync(join(logs, 'summary.json'), `${JSON.stringify({ command, busy, results }, null, 2)}\n`)
process.exit(failed.length > 0 ? 1 : 0)

/** Runs the command once, its output written to `log` as it comes (`tail -f` it) and kept for the summary. */
function runOnce(argv, log) {
  return new Promise((resolve) => {
    let output = ''
    const file = createWriteStream(log)
    current = spawn(argv[0], argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: process.env })
    for (const stream of [current.stdout, current.stderr])
      stream.on('data', (chunk) => {
        output += chunk
        file.write(chunk)
      })
    current.on('close', (code) => file.end(() => resolve({ code: code ?? 1, output })))
  })
}

/** Reads the vitest JSON reports the run left (`reports/vitest.json` of each workspace). */
function collectSlowest(into) {
  for (const base of ['apps', 'packages']) {
    for (const name of readdirSync(join(root, base))) {
      const file = join(root, base, name, 'reports/vitest.json')
      if (!existsSync(file)) continue
      const report = JSON.parse(readFileSync(file, 'utf8'))
      for (const suite of report.testResults ?? []) {
        for (const test of suite.assertionResults ?? []) {
          if (typeof test.duration !== 'number') continue
          const key = `${relative(root, suite.name)} › ${test.fullName}`
          const seen = into.get(key)
          // The test's own timeout: vitest.timeouts.ts (every workspace's setup, through
          // vitest.shared.ts) puts it in the report.
          if (!seen || seen.ms < test.duration) into.set(key, { ms: test.duration, timeout: test.meta?.timeout })
        }
      }
    }
  }
}

function minutes(seconds) {
  return `${Math.floor(seconds / 60)} min ${String(Math.round(seconds % 60)).padStart(2, '0')} s`
}
