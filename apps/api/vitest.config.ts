import { availableParallelism } from 'node:os'
import { defineConfig, mergeConfig } from 'vitest/config'
import shared from '../../vitest.shared.ts'
import { postgresBackend, postgresServerUrl, redacted } from './test/backend-choice.ts'

// One suite, every store: the same test files run once per project, and TEST_STORE tells
// test/backend.ts which store to open. PostgreSQL is the server named by TEST_DATABASE_URL (or a
// postgres:// DATABASE_URL) when there is one, else PGlite, in process. The project name shows
// on every line of the output; reports/vitest.json stays one report for all of them.

const postgres = postgresBackend()
const serverUrl = postgresServerUrl()
// The config is read once per project: say it once.
if (!process.env.SESSION_EVENTS_TESTS_ANNOUNCED) {
  process.env.SESSION_EVENTS_TESTS_ANNOUNCED = '1'
  console.log(
    postgres === 'postgres'
      ? `apps/api tests: SQLite (in memory) and PostgreSQL (server ${redacted(serverUrl!)}, a fresh schema per test file)`
      : 'apps/api tests: SQLite (in memory) and PostgreSQL on PGlite (in process; set TEST_DATABASE_URL=postgres://… to use a server)',
  )
}

/** SQLite only: its files on disk, its query plans, the seed and server commands over it. */
const sqliteOnly = ['test/store.test.ts', 'test/process.test.ts']
/** PostgreSQL only: its faults, its query plans, the server and several processes over it. */
const postgresOnly = [
  'test/postgres-*.test.ts',
  'test/query-plans.test.ts',
  'test/scale-out.test.ts',
  'test/follow-scale-out.test.ts',
]
// Every other file (the store contract, pagination, the API, HTTP: whatever uses fixture())
// runs on both.

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      // vitest's default is one worker fewer than the cores: one, on two. This suite is the
      // longest of `npm test`, and its files wait on sockets, timers and PostgreSQL as much as on
      // the CPU; two workers run it alone in 67 s instead of 111 s on two cores.
      maxWorkers: Math.max(2, availableParallelism() - 1),
      projects: [
        {
          extends: true,
          test: {
            name: 'sqlite',
            include: ['test/**/*.test.ts'],
            exclude: postgresOnly,
            env: { TEST_STORE: 'sqlite' },
            setupFiles: ['test/setup.ts'],
          },
        },
        {
          extends: true,
          test: {
            name: postgres,
            include: ['test/**/*.test.ts'],
            exclude: sqliteOnly,
            // PGlite takes seconds to start: its files share one per worker (test/backend.ts).
            isolate: postgres !== 'pglite',
            env: { TEST_STORE: postgres },
            setupFiles: ['test/setup.ts'],
          },
        },
      ],
    },
  }),
)
