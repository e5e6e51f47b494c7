#!/usr/bin/env node
// `npm run lint`: every hand-written file formatted (oxfmt) and linted (oxlint, with the type-aware
// rules of oxlint-tsgolint). `npm run format` (`--fix`) rewrites what the tools can fix.
//
//   node scripts/lint.mjs [--fix] [--no-build]
//
// The type-aware rules (no floating promises, …) read the types of the workspace packages from
// their built declarations, as the typecheck does: those packages are built first, through turbo
// (a cache hit when nothing changed). `--no-build` skips that, for scripts/test.mjs, which has
// built them already. Rules and ignores: .oxlintrc.json, .oxfmtrc.json.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const args = new Set(process.argv.slice(2))
const fix = args.has('--fix')
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' }

function run(command, commandArgs) {
  const result = spawnSync('npx', ['--no-install', command, ...commandArgs], { cwd: root, stdio: 'inherit', env })
  return result.status === 0
}

// The packages whose declarations other workspaces import: the client and what it is built on
// (the API, the server stubs, the spec). The CLI, the page and the bench are imported by none.
const TYPED = '--filter=@session-events/client...'
if (!args.has('--no-build') && !run('turbo', ['run', 'build', TYPED, '--output-logs=errors-only'])) process.exit(1)

const formatted = run('oxfmt', fix ? ['.'] : ['--check', '.'])
const linted = run('oxlint', ['--type-aware', '--deny-warnings', ...(fix ? ['--fix'] : [])])
if (!formatted && !fix) console.error('Some files are not formatted: `npm run format` formats them.')
if (!linted)
  console.error(
    fix ? 'oxlint found what it cannot fix (above).' : 'oxlint found problems (above); `npm run format` fixes some.',
  )
process.exit(formatted && linted ? 0 : 1)
