import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { SETTINGS } from '../src/config.js'
import { openStore } from '../src/store/open.js'
import { Lease } from '../src/store/prune-lease.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { startServerProcess } from './server-process.js'

// The built server and seed commands as a user runs them (`npm test` builds them first).

const dist = new URL('../dist/', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'session-events-process-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn' }

describe('the server process', () => {
  it('seeds an empty store, prints a curl line that works and the page of its session, and stops on SIGTERM with exit 0', async () => {
    const server = await startServerProcess(
      { DATABASE_URL: `sqlite:${join(dir, 'demo.db')}`, DEMO_API_KEY: 'metorial_sk_testdemo12345678' },
      { until: /curl -H 'Authorization: Bearer (metorial_sk_\w+)' '([^']+)'[\s\S]*?in a browser[^\n]*\n\s+(\S+)/ },
    )
    const url = server.url
    const curl = server.match
    expect(curl?.[1]).toBe('metorial_sk_testdemo12345678')
    // The page of the session the curl line reads (its key is asked for by the page, never in the URL).
    const sessionId = /\/sessions\/(ses_\w+)\//.exec(curl![2]!)?.[1]
    expect(curl?.[3]).toBe(`${url}/?session=${sessionId}`)
    expect(curl?.[3]).not.toContain('metorial_sk_')
    const res = await fetch(curl![2]!, { headers: { Authorization: `Bearer ${curl![1]}` } })
    expect(res.status).toBe(200)
    expect(((await res.json()) as any).items).toHaveLength(2)
    expect((await fetch(`${url}/readyz`)).status).toBe(200)
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
  })

  // A test a setting: each starts a Node process (five in one test took 10.4 s of 30 s in `npm run stress`).
  it.for([
    [{ PORT: 'eighty' }, /PORT must be a whole number/],
    [{ DATABASE_URL: 'mysql://localhost/x' }, /DATABASE_URL must start with sqlite: or postgres:\/\//],
    [{ SEED: 'maybe' }, /SEED must be true or false/],
    [{ RATE_LIMIT_PER_MINUTE: 'lots' }, /RATE_LIMIT_PER_MINUTE/],
    [{ EVENT_RETENTION: '5 weeks' }, /EVENT_RETENTION must be a duration such as 30d, 12h, 90m or 45s/],
  ] as const)('stops at start with a clear message and a non-zero exit on a bad setting: %o', ([env, message]) => {
    const run = spawnSync(process.execPath, [join(dist, 'main.js')], {
      env: { ...baseEnv, ...env },
      encoding: 'utf8',
      timeout: 30_000,
    })
    expect(run.status).not.toBe(0)
    expect(run.stderr).toMatch(message)
    expect(run.stderr).not.toMatch(/at .*\.js:\d+/)
  })

  it('--help says what it reads from the environment', () => {
    const run = spawnSync(process.execPath, [join(dist, 'main.js'), '--help'], { encoding: 'utf8' })
    expect(run.status).toBe(0)
    expect(run.stdout).toMatch(/Retention: every few minutes one of the processes over the store prunes/)
    for (const setting of Object.values(SETTINGS).filter((s) => s.help !== undefined)) {
      expect(run.stdout).toContain(`  ${setting.variable} `)
    }
  })
})

describe('the seed command', () => {
  it('--json prints only the summary, on one line, and the data is there', () => {
    const env = { ...baseEnv, DATABASE_URL: `sqlite:${join(dir, 'seed.db')}` }
    const run = spawnSync(
      process.execPath,
      [join(dist, 'seed-cli.js'), '--sessions', '2', '--events', '40', '--json'],
      {
        env,
        encoding: 'utf8',
        timeout: 60_000,
      },
    )
    expect(run.status).toBe(0)
    const lines = run.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    const summary = JSON.parse(lines[0]!)
    expect(summary.instances).toHaveLength(2)
    for (const instance of summary.instances) {
      expect(instance.id).toMatch(/^ins_/)
      expect(instance.secret_key).toMatch(/^metorial_sk_/)
      expect(instance.publishable_key).toMatch(/^metorial_pk_/)
      expect(instance.revoked_key).toMatch(/^metorial_sk_/)
      expect(instance.sessions).toHaveLength(2)
      for (const session of instance.sessions) expect(session.events).toBeGreaterThanOrEqual(40)
    }
  })

  it('refuses a bad count', () => {
    const run = spawnSync(process.execPath, [join(dist, 'seed-cli.js'), '--events', 'many'], {
      env: baseEnv,
      encoding: 'utf8',
    })
    expect(run.status).toBe(1)
    expect(run.stderr).toMatch(/--events must be a whole number/)
  })
})

describe('the admin command', () => {
  const admin = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, [join(dist, 'admin-cli.js'), ...args], {
      env: { ...baseEnv, ...env },
      encoding: 'utf8',
    })

  it('creates an instance whose secret key writes and reads at once, and revokes a key', async () => {
    const env = { DATABASE_URL: `sqlite:${join(dir, 'admin.db')}` }
    const created = admin(['instances', 'create', '--name', 'Acme', '--json'], env)
    expect(created.status).toBe(0)
    const lines = created.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    const instance = JSON.parse(lines[0]!) as { instance_id: string; secret_key: string; publishable_key: string }
    expect(Object.keys(instance)).toEqual(['instance_id', 'secret_key', 'publishable_key'])
    expect(instance.secret_key).toMatch(/^metorial_sk_/)

    const server = await startServerProcess({ ...env, SEED: 'false', KEY_CACHE_SECONDS: '0' })
    const auth = (key: string) => ({ Authorization: `Bearer ${key}` })
    const session = await fetch(`${server.url}/sessions`, { method: 'POST', headers: auth(instance.secret_key) })
    expect(session.status).toBe(201)
    const { id } = (await session.json()) as { id: string }
    expect((await fetch(`${server.url}/sessions/${id}/events`, { headers: auth(instance.secret_key) })).status).toBe(
      200,
    )
    expect(
      (await fetch(`${server.url}/sessions/${id}/events`, { headers: auth(instance.publishable_key) })).status,
    ).toBe(403)

    const revoked = admin(['keys', 'revoke', instance.secret_key], env)
    expect(revoked.status).toBe(0)
    expect((await fetch(`${server.url}/sessions/${id}/events`, { headers: auth(instance.secret_key) })).status).toBe(
      401,
    )
    expect(admin(['keys', 'revoke', instance.secret_key], env).status).toBe(1)
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
  })

  it('says how to use it, and refuses what it does not know', () => {
    const help = admin(['--help'], {})
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/instances create --name NAME/)
    const unknown = admin(['keys', 'rotate'], {})
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/unknown command "keys rotate"/)
    expect(admin(['instances', 'create'], {}).status).toBe(2)
  })
})

describe('retention: the admin commands and the server', () => {
  const DAY = 86_400_000
  const admin = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, [join(dist, 'admin-cli.js'), ...args], {
      env: { ...baseEnv, ...env },
      encoding: 'utf8',
    })

  /** A store file with an instance whose session has `old` events of 40 days ago and `young` of an hour ago. */
  async function storeWith(file: string, counts: { old: number; young: number }) {
    const store = await openStore(`sqlite:${join(dir, file)}`)
    const at = new Date(Date.now() - 41 * DAY)
    const { id: instanceId } = await store.admin.createInstance({ name: 'retained', at })
    const { id: serverId } = await store.seeding.createServer({ name: 'S', description: null, type: 'public', at })
    const { id: serverVersionId } = await store.seeding.createServerVersion({ serverId, at })
    const deployment = await store.seeding.createServerDeployment({
      instanceId,
      serverId,
      name: null,
      description: null,
      at,
    })
    const session = await store.seeding.createSession({ instanceId, at })
    const serverSession = await store.seeding.createServerSession({
      sessionId: session.id,
      serverDeploymentId: deployment.id,
      mcp: { object: 'mcp', version: '2025-03-26', connection_type: 'streamable_http', client: null, server: null },
      at,
    })
    const run = await store.seeding.createServerRun({
      serverSessionId: serverSession.id,
      serverVersionId,
      type: 'hosted',
      at,
    })
    const events = (n: number, t: number) =>
      Array.from({ length: n }, (_, i) => ({
        serverRunId: run.id,
        lines: [{ type: 'stdout' as const, line: 'x' }],
        at: new Date(t + i),
      }))
    await store.seeding.appendLogEvents([
      ...events(counts.old, Date.now() - 40 * DAY),
      ...events(counts.young, Date.now() - 3_600_000),
    ])
    return { store, instanceId, sessionId: session.id }
  }
  const eventCount = async (store: SqlStore) =>
    Number(
      (
        await store.db
          .selectFrom('session_events')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    )

  // Each admin command is a Node process of its own: one test for each command, so that a test
  // starts a few processes, not nine (10.4 s of 30 s in `npm run stress` as one test).
  it("sets an instance's retention, back to the default, and refuses a bad one", async () => {
    const { store, instanceId } = await storeWith('retention.db', { old: 30, young: 5 })
    const env = { DATABASE_URL: `sqlite:${join(dir, 'retention.db')}` }
    try {
      const set = admin(['instances', 'set-retention', instanceId, '12h', '--json'], env)
      expect(set.status, set.stderr).toBe(0)
      expect(JSON.parse(set.stdout)).toEqual({ instance_id: instanceId, event_retention: '12h' })
      expect(admin(['instances', 'set-retention', instanceId, 'default'], env).stdout).toMatch(
        /as EVENT_RETENTION says \(30d here\)/,
      )
      const refused = admin(['instances', 'set-retention', instanceId, 'a while'], env)
      expect(refused.status).toBe(2)
      expect(refused.stderr).toMatch(/DURATION must be a duration such as 30d/)
      expect(admin(['instances', 'set-retention', 'ins_nobody', '7d'], env).status).toBe(1)
    } finally {
      await store.close()
    }
  })

  it('prunes now, printing one JSON line; --older-than removes what is older, whatever the retention', async () => {
    const { store } = await storeWith('prune-now.db', { old: 30, young: 5 })
    const env = { DATABASE_URL: `sqlite:${join(dir, 'prune-now.db')}` }
    try {
      const pruned = admin(['prune', '--json'], env)
      expect(pruned.status, pruned.stderr).toBe(0)
      const lines = pruned.stdout.trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(JSON.parse(lines[0]!)).toEqual({ events_deleted: 30, sessions_deleted: 0, idempotency_keys_deleted: 0 })
      expect(await eventCount(store)).toBe(5)
      // --older-than: everything older, whatever the retention.
      expect(JSON.parse(admin(['prune', '--older-than', '1m', '--json'], env).stdout)).toMatchObject({
        events_deleted: 5,
      })
      expect(admin(['prune', '--older-than', 'never'], env).stderr).toMatch(/--older-than must be a duration/)
      expect(admin(['prune', 'now'], env).status).toBe(2)
    } finally {
      await store.close()
    }
  })

  it('prune waits while another process holds the lease, then prunes', async () => {
    const { store } = await storeWith('lease.db', { old: 10, young: 0 })
    try {
      const lease = new Lease(store.db, { holder: 'another process' })
      expect(await lease.take()).toBe(true)
      const child = spawn(process.execPath, [join(dist, 'admin-cli.js'), 'prune', '--json'], {
        env: { ...baseEnv, DATABASE_URL: `sqlite:${join(dir, 'lease.db')}` },
      })
      let out = ''
      let err = ''
      child.stdout.on('data', (d) => (out += d))
      child.stderr.on('data', (d) => (err += d))
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
      const deadline = Date.now() + 20_000
      while (!err.includes('waiting') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
      expect(err).toMatch(/another process is pruning; waiting/)
      expect(await eventCount(store)).toBe(10)
      await lease.give({ ran: true })
      expect(await exited).toBe(0)
      expect(JSON.parse(out)).toMatchObject({ events_deleted: 10, sessions_deleted: 1 })
    } finally {
      await store.close()
    }
  })

  it('the server prunes on its own soon after it starts', async () => {
    const { store, sessionId } = await storeWith('server.db', { old: 20, young: 0 })
    const server = await startServerProcess({
      DATABASE_URL: `sqlite:${join(dir, 'server.db')}`,
      SEED: 'false',
      LOG_LEVEL: 'info',
    })
    try {
      // Its first look is a few seconds after start; another connection sees what it did.
      const deadline = Date.now() + 20_000
      while ((await eventCount(store)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250))
      expect(await eventCount(store)).toBe(0)
      expect(await store.db.selectFrom('sessions').select('id').where('id', '=', sessionId).execute()).toEqual([])
    } finally {
      await store.close()
      server.child.kill('SIGTERM')
      expect(await server.exited).toBe(0)
    }
    // Its log says so (written out at the latest when it stops).
    const line = server
      .output()
      .split('\n')
      .find((l) => l.includes('"msg":"pruned"'))
    expect(JSON.parse(line!)).toMatchObject({ events_deleted: 20, sessions_deleted: 1, idempotency_keys_deleted: 0 })
  }, 40_000)
})
