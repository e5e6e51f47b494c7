#!/usr/bin/env node
// `npm test`: every check of the repository, then one line that adds them up.
//
// 1. generate:check on the tree as it is (before turbo regenerates anything), so stale
//    generated code fails here rather than being quietly rewritten;
// 2. turbo: lint the spec, typecheck and test every workspace (built in dependency order), and
//    the format and lint of every hand-written file (`lint:code`, scripts/lint.mjs, once the
//    packages it reads types from are built, beside the tests rather than after them);
// 3. the vitest JSON report of every workspace, summed into "N passed, N failed, N skipped";
//    skipped tests are never silent: each suite that skipped some says which, and its title why
//    (the browser tests name the command that installs Chromium).
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const began = Date.now()
const root = fileURLToPath(new URL('..', import.meta.url))
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const passArgs = process.argv.slice(2)

function workspaces() {
  const dirs = []
  for (const pattern of rootPkg.workspaces) {
    if (!pattern.endsWith('/*')) {
      dirs.push(pattern)
      continue
    }
    const base = pattern.slice(0, -2)
    for (const name of readdirSync(join(root, base))) dirs.push(`${base}/${name}`)
  }
  return dirs.filter((d) => existsSync(join(root, d, 'package.json')))
}

const tested = workspaces().filter((d) => JSON.parse(readFileSync(join(root, d, 'package.json'), 'utf8')).scripts?.test)
for (const d of tested) rmSync(join(root, d, 'reports/vitest.json'), { force: true })

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' }
const problems = []

const check = spawnSync('node', ['scripts/generate.mjs', '--check'], { cwd: root, stdio: 'inherit', env })
if (check.status !== 0) problems.push('generate:check')

const turbo = spawnSync(
  'npx',
  ['turbo', 'run', 'lint', 'typecheck', 'test', 'lint:code', '--continue', '--summarize', ...passArgs],
  { cwd: root, stdio: 'inherit', env },
)

let passed = 0
let failed = 0
let skipped = 0
/** Skipped tests by workspace and the titles of the suites they are in: the titles say why. */
const skips = new Map()
for (const d of tested) {
  const file = join(root, d, 'reports/vitest.json')
  if (!existsSync(file)) {
    problems.push(`${d}: no test report (its tests did not run)`)
    continue
  }
  const report = JSON.parse(readFileSync(file, 'utf8'))
  passed += report.numPassedTests
  failed += report.numFailedTests
  skipped += report.numPendingTests + (report.numTodoTests ?? 0)
  for (const suite of report.testResults ?? []) {
    for (const test of suite.assertionResults ?? []) {
      if (!['skipped', 'pending', 'todo'].includes(test.status)) continue
      const where = `${d}: ${test.ancestorTitles[0] ?? suite.name.replace(root, '')}`
      skips.set(where, (skips.get(where) ?? 0) + 1)
    }
  }
  // A test file that fails to load has no tests to count: count the file.
  for (const suite of report.testResults ?? []) {
    if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) {
      failed += 1
      problems.push(`${d}: ${suite.name.replace(root, '')} failed to run: ${(suite.message ?? '').split('\n')[0]}`)
    }
  }
}
// The tasks that failed, from the run's summary (--summarize): each one not a test task is a
// failure of its own (a test task's failures are the tests counted above).
const failedTasks = turboFailures()
for (const task of failedTasks.filter((t) => !t.endsWith('#test')))
  problems.push(
    task === '//#lint:code'
      ? 'lint:code: a file is not formatted or oxlint found a problem (see above; `npm run format` fixes what it can)'
      : `${task} failed (see above)`,
  )
if (turbo.status !== 0 && failed === 0 && failedTasks.length === 0)
  problems.push('turbo: a lint, build or typecheck task failed (see above)')
failed += problems.filter((p) => !p.includes('failed to run')).length

if (skips.size > 0)
  console.log(
    `\nSkipped:\n${[...skips].map(([where, n]) => `  - ${where}: ${n} ${n === 1 ? 'test' : 'tests'}`).join('\n')}`,
  )
if (problems.length > 0) console.log(`\nProblems:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
const seconds = Math.round((Date.now() - began) / 1000)
console.log(`\nnpm test took ${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`)
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 || turbo.status !== 0 || check.status !== 0 ? 1 : 0)

/** The ids of the tasks that failed in the turbo run just made (its summary, removed once read). */
function turboFailures() {
  const runs = join(root, '.turbo/runs')
  if (!existsSync(runs)) return []
  const newest = readdirSync(runs)
    .filter((f) => f.endsWith('.json'))
    .map((f) => join(runs, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]
  if (!newest) return []
  try {
    const summary = JSON.parse(readFileSync(newest, 'utf8'))
    return (summary.tasks ?? []).filter((t) => (t.execution?.exitCode ?? 0) !== 0).map((t) => t.taskId)
  } catch {
    return []
  } finally {
    rmSync(newest, { force: true })
  }
}
