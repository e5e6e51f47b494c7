// Which stores the suite runs against. Read by vitest.config.ts (to name the projects) and by
// the tests (through backend.ts); no imports, so the config can load it as it is.

export type Backend = 'sqlite' | 'postgres' | 'pglite'

/** The PostgreSQL server the tests may use: TEST_DATABASE_URL, else a postgres:// DATABASE_URL. */
export function postgresServerUrl(env: Record<string, string | undefined> = process.env): string | undefined {
  for (const url of [env.TEST_DATABASE_URL, env.DATABASE_URL]) {
    if (url && /^postgres(ql)?:\/\//.test(url)) return url
  }
  return undefined
}

/** The URL without its password, to print. */
export function redacted(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')
}

/** The PostgreSQL flavour of this machine: a real server when one is named, else PGlite. */
export function postgresBackend(env: Record<string, string | undefined> = process.env): 'postgres' | 'pglite' {
  return postgresServerUrl(env) ? 'postgres' : 'pglite'
}
