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

/** Tests of the store and the API: every backend. */
const everyStore = ['test/store-contract.test.ts', 'test/pagination.test.ts', 'test/session-events.test.ts', 'test/http.test.ts']
/** PostgreSQL only: its faults, its query plans, several processes over one database. */
const postgresOnly = ['test/postgres-*.test.ts', 'test/query-plans.test.ts', 'test/scale-out.test.ts']

export default mergeConfig(
  shared,
  defineConfig({
    test: {
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
            include: [...everyStore, ...postgresOnly],
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
