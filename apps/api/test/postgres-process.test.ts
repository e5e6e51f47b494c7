import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { backend, networkPostgres } from './backend.js'
import { startServerProcess } from './server-process.js'

// `DATABASE_URL=postgres://… npm start` serves the same API as on SQLite, seeded the same way:
// the built server is started on each, and their answers compared with ids and times masked.

const dir = mkdtempSync(join(tmpdir(), 'session-events-pg-process-'))
const target = (await networkPostgres())!
const children: ChildProcess[] = []
afterAll(() => {
  for (const child of children) child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

const DEMO_KEY = 'metorial_sk_samedemo12345678'

async function start(databaseUrl: string) {
  const server = await startServerProcess(
    { DATABASE_URL: databaseUrl, DEMO_API_KEY: DEMO_KEY },
    { until: /curl -H 'Authorization: Bearer \w+' '([^']+)'/ },
  )
  children.push(server.child)
  const curl = server.match[1]!
  return { child: server.child, exited: server.exited, curl, base: new URL(curl).origin }
}

/** A response with what differs between two seedings (ids, times) masked. */
const masked = (text: string) =>
  text
    .replace(/\b([a-z]{3})_[0-9a-z]{9}[0-9A-Za-z]{13}\b/g, '$1_…')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '…Z')
    .replace(/"cur_[0-9A-Za-z]+"/g, '"cur_…"')

describe(`the server process on PostgreSQL (${backend})`, () => {
  it('seeds an empty database, serves what the SQLite server serves, and stops on SIGTERM', async () => {
    const [pg, lite] = await Promise.all([start(target.url), start(`sqlite:${join(dir, 'demo.db')}`)])
    const headers = { Authorization: `Bearer ${DEMO_KEY}` }
    const path = (curl: string) => new URL(curl).pathname
    for (const query of ['?limit=2', '?limit=7&order=desc', '?limit=3&type=server_run_error']) {
      const [a, b] = await Promise.all([
        fetch(`${pg.base}${path(pg.curl)}${query}`, { headers }),
        fetch(`${lite.base}${path(lite.curl)}${query}`, { headers }),
      ])
      expect(a.status).toBe(200)
      expect(masked(await a.text())).toBe(masked(await b.text()))
    }
    const ready = await fetch(`${pg.base}/readyz`)
    expect(await ready.json()).toEqual({ status: 'ready', store: 'postgres' })
    pg.child.kill('SIGTERM')
    expect(await pg.exited).toBe(0)

    // Started again over the same database: nothing is seeded twice.
    const again = await start(target.url)
    expect(new URL(again.curl).pathname).toBe(path(pg.curl))
    const page = (await (await fetch(`${again.base}${path(again.curl)}?limit=100`, { headers })).json()) as {
      items: unknown[]
    }
    expect(page.items.length).toBe(100)
    again.child.kill('SIGTERM')
    expect(await again.exited).toBe(0)
  })
})
