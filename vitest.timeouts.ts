import { beforeEach } from 'vitest'

// Every test's own timeout in the JSON report (its `meta.timeout`): `npm run stress` reads it to
// show how close each test came to it, the one a test sets for itself included.

declare module 'vitest' {
  interface TaskMeta {
    timeout?: number
  }
}

beforeEach(({ task }) => {
  task.meta.timeout = task.timeout
})
