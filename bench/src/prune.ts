import { readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { openStore, type SqlStore } from '@session-events/api'
import { hashSecret } from '@session-events/api/internal/api-keys.js'
import {
  DAY_MS,
  ensureEventPartitions,
  eventPartitions,
  FIRST_PARTITION,
} from '@session-events/api/internal/store/retention-partitions.js'
import { idBound } from '@session-events/api/internal/store/retention.js'
import SQLite from 'better-sqlite3'
import { sql } from 'kysely'
import { freshLiveStore, logLines, removeLiveStore, sessionsWithRuns, startApi, type StoreKind } from './api.js'
import { percentile } from './load.js'
import { dataDir } from './paths.js'
import { pgQuery, vacuumSchema } from './pg.js'

// Retention's benchmark (issue 19): a prune of a million expired events as the server runs it
// on its own. The API starts on a store holding `events` events written 31 days ago
// (EVENT_RETENTION is 30d), in 100 sessions of their own, and prunes them at its first look (5 s
// after start). The server's "pruned" log line says what went and how long the prune took
// (events/s, the space given back included). Twice: once alone, for the prune's pace; once while
// 8 connections append 10 lines at a time to 8 sessions of their own, as fast as the API answers
// them, for what the prune costs appends: the appends that started during the prune against
// those that did not (before it, and after it as long again), and the prune's pace under that
// load (it yields to requests).
//
// On PostgreSQL the old events are in partitions of their days (made here, as a store that has
// been running since then has them), and go with them; on SQLite they are deleted in batches and
// the file shrinks. Each run has a fresh store of its own (bench_prune, bench/.data/prune.db),
// removed after it.

export interface PruneSettings {
  /** Expired events in the store when the API starts. */
  events: number
}

export interface PruneRun {
  /** Events the prune deleted, as its log line says. */
  events: number
  pruneMs: number
  eventsPerSecond: number
  sessionsDeleted: number
  /** With appends: those that started during the prune and those that did not, and their p99s (ms). */
  appends?: { during: number; without: number; p99DuringMs: number; p99WithoutMs: number; ratio: number }
  /** SQLite: the file's bytes before the API started and after it stopped. */
  fileBytes?: { before: number; after: number }
}

export interface PruneRow {
  store: StoreKind
  alone: PruneRun
  appending: PruneRun
}

export interface PruneResult {
  settings: PruneSettings
  sessions: number
  appenders: number
  rows: PruneRow[]
  /** Stores left out, and why (no PostgreSQL server). */
  skipped: string[]
}

const SESSIONS = 100
const APPENDERS = 8

type Log = (line: string) => void

/** PostgreSQL: the partitions of the days since `fromMs`, as a store that ran since then has; the first partition below them. */
async function partitionsSince(store: SqlStore, fromMs: number): Promise<void> {
  const partitions = (await eventPartitions(store.db))!
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from session_events_p0`.execute(store.db)
  if (rows[0]!.n > 0) throw new Error('bench prune: the first partition of a new store holds events')
  await sql`alter table session_events detach partition ${sql.table(FIRST_PARTITION)}`.execute(store.db)
  await sql`drop table ${sql.table(FIRST_PARTITION)}`.execute(store.db)
  const firstDay = partitions[1]!.fromMs
  for (let day = Math.floor(fromMs / DAY_MS) * DAY_MS; day < firstDay; day += DAY_MS) {
    const name = `session_events_p${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`
    await sql`create table ${sql.table(name)} (like session_events)`.execute(store.db)
    await sql`alter table session_events attach partition ${sql.table(name)} for values
              from (${sql.lit(idBound('sessionEvent', day))}) to (${sql.lit(idBound('sessionEvent', day + DAY_MS))})`.execute(
      store.db,
    )
  }
  await ensureEventPartitions(store.db, { now: new Date() })
}

/** `events` events of a day past the retention, in SESSIONS sessions with a run each, written in bulk by SQL. */
async function expiredEvents(store: SqlStore, secretKey: string, events: number, log: Log): Promise<void> {
  // A day past the retention: the events of one day's partition, as a store that prunes every day has to drop.
  const oldMs = Math.floor((Date.now() - 31 * DAY_MS) / DAY_MS) * DAY_MS + 3_600_000
  const key = await store.reader.findApiKey(hashSecret(secretKey))
  const at = new Date(oldMs)
  const { id: serverId } = await store.seeding.createServer({ name: 'old', description: null, type: 'custom', at })
  const { id: serverVersionId } = await store.seeding.createServerVersion({ serverId, at })
  const { id: serverDeploymentId } = await store.seeding.createServerDeployment({
    instanceId: key!.instance_id,
    serverId,
    name: null,
    description: null,
    at,
  })
  if (store.dialect === 'postgres') await partitionsSince(store, oldMs)
  const prefix = idBound('sessionEvent', oldMs)
  const lines = JSON.stringify(logLines(3))
  const perSession = Math.ceil(events / SESSIONS)
  for (let s = 0; s < SESSIONS; s++) {
    const session = await store.seeding.createSession({ instanceId: key!.instance_id, at })
    const { id: serverSessionId } = await store.seeding.createServerSession({
      sessionId: session.id,
      serverDeploymentId,
      mcp: { object: 'mcp', version: '2025-03-26', connection_type: 'streamable_http', client: null, server: null },
      at,
    })
    const { id: runId } = await store.seeding.createServerRun({ serverSessionId, serverVersionId, type: 'hosted', at })
    const n = Math.min(perSession, events - s * perSession)
    // Ids of one millisecond, told apart by their random part: a session's, then a counter.
    const head = `${prefix}${String(s).padStart(3, '0')}`
    const values = sql`${session.id}, ${runId}, ${serverSessionId}, 'server_logs', null, ${lines}, ${at.toISOString()}`
    if (store.dialect === 'postgres')
      await sql`insert into session_events (id, session_id, server_run_id, server_session_id, type, server_run_error_id, log_lines_json, created_at)
                select ${head}::text || lpad(g::text, 10, '0'), ${values} from generate_series(1, ${n}) as g`.execute(
        store.db,
      )
    else
      await sql`insert into session_events (id, session_id, server_run_id, server_session_id, type, server_run_error_id, log_lines_json, created_at)
                with recursive g(n) as (select 1 union all select n + 1 from g where n < ${n})
                select ${head} || substr('0000000000' || n, -10, 10), ${values} from g`.execute(store.db)
    if (s % 10 === 9)
      log(`  ${store.dialect}: ${Math.min(events, (s + 1) * perSession).toLocaleString('en')} expired events written`)
  }
}

const p99 = (latencies: number[]) =>
  percentile(
    [...latencies].sort((a, b) => a - b),
    99,
  )

async function run(store: StoreKind, events: number, withAppends: boolean, log: Log): Promise<PruneRun> {
  log(
    `  ${store}: a store of ${events.toLocaleString('en')} expired events, ${withAppends ? 'with' : 'without'} appends`,
  )
  const live = await freshLiveStore(store, 'prune')
  try {
    const opened = await openStore(live.databaseUrl)
    try {
      await expiredEvents(opened, live.secretKey, events, log)
    } finally {
      await opened.close()
    }
    if (store === 'postgres') await vacuumSchema(live.where)
    const fileBefore = store === 'sqlite' ? statSync(live.where).size : undefined

    const stdoutFile = join(dataDir, `prune-${store}.log`)
    const api = await startApi({
      name: `prune-${store}`,
      databaseUrl: live.databaseUrl,
      env: { EVENT_RETENTION: '30d' },
      args: { stdoutFile },
    })
    const logStart = (() => {
      try {
        return readFileSync(stdoutFile, 'utf8').length
      } catch {
        return 0
      }
    })()
    try {
      const sessions = withAppends ? await sessionsWithRuns(api.url, live.secretKey, APPENDERS) : []
      const appends: { at: number; ms: number }[] = []
      let appending = true
      const body = JSON.stringify({ log_lines: logLines(10) })
      const appender = async (s: { sessionId: string; runId: string }) => {
        const payload = body.replace('{', `{"server_run_id":"${s.runId}",`)
        while (appending) {
          const at = Date.now()
          const response = await fetch(`${api.url}/sessions/${s.sessionId}/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${live.secretKey}`, 'content-type': 'application/json' },
            body: payload,
          })
          await response.arrayBuffer()
          if (response.status === 201) appends.push({ at, ms: Date.now() - at })
        }
      }
      const appendsFrom = Date.now()
      const appenders = sessions.map(appender)
      // The prune is over when the lease says a run ended (its log line is written out later:
      // the API's log is buffered until it stops).
      const lastRun = async (): Promise<string> => {
        if (store === 'postgres')
          return (await pgQuery<{ last_run_at: string }>(live.where, 'select last_run_at from leases'))[0]!.last_run_at
        const db = new SQLite(live.where, { readonly: true })
        try {
          return String(db.prepare('select last_run_at from leases').pluck().get())
        } finally {
          db.close()
        }
      }
      const before = await lastRun()
      const deadline = Date.now() + 30 * 60_000
      while ((await lastRun()) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
      if ((await lastRun()) === before) throw new Error('bench prune: the server did not prune within 30 minutes')
      const endedAt = Date.now()
      // Appends go on after it as long again (5 s at least), for the figures without a prune.
      if (withAppends) await new Promise((resolve) => setTimeout(resolve, Math.max(endedAt - appendsFrom, 5_000)))
      appending = false
      await Promise.all(appenders)
      await api.stop()
      const line = readFileSync(stdoutFile, 'utf8')
        .slice(logStart)
        .split('\n')
        .find((l) => l.includes('"msg":"pruned"'))
      if (!line) throw new Error('bench prune: no "pruned" line in the log of the API')
      const pruned = JSON.parse(line) as { time: number; ms: number; events_deleted: number; sessions_deleted: number }
      const started = pruned.time - pruned.ms

      const figures: PruneRun = {
        events: pruned.events_deleted,
        pruneMs: pruned.ms,
        eventsPerSecond: Math.round(pruned.events_deleted / (pruned.ms / 1000)),
        sessionsDeleted: pruned.sessions_deleted,
      }
      if (withAppends) {
        const warm = appends[0]!.at + 1_000
        const during = appends.filter((a) => a.at >= started && a.at <= pruned.time).map((a) => a.ms)
        const without = appends.filter((a) => (a.at >= warm && a.at < started) || a.at > pruned.time).map((a) => a.ms)
        figures.appends = {
          during: during.length,
          without: without.length,
          p99DuringMs: p99(during),
          p99WithoutMs: p99(without),
          ratio: Math.round((p99(during) / p99(without)) * 100) / 100,
        }
      }
      if (fileBefore !== undefined) figures.fileBytes = { before: fileBefore, after: statSync(live.where).size }
      return figures
    } finally {
      await api.stop()
    }
  } finally {
    await removeLiveStore(live)
    rmSync(join(dataDir, `prune-${store}.log`), { force: true })
  }
}

/** The prune on each store (PostgreSQL when its server answers), alone and with appends. */
export async function pruneSuite(settings: PruneSettings, postgres: boolean, log: Log): Promise<PruneResult> {
  const rows: PruneRow[] = []
  for (const store of postgres ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const)) {
    const alone = await run(store, settings.events, false, log)
    const appending = await run(store, settings.events, true, log)
    const a = appending.appends!
    log(
      `  ${store}: ${alone.eventsPerSecond.toLocaleString('en')} events/s alone, ${appending.eventsPerSecond.toLocaleString('en')} with appends; ` +
        `append p99 ${a.p99DuringMs} ms during, ${a.p99WithoutMs} ms without`,
    )
    rows.push({ store, alone, appending })
  }
  return {
    settings,
    sessions: SESSIONS,
    appenders: APPENDERS,
    rows,
    skipped: postgres ? [] : ['PostgreSQL: no server to reach'],
  }
}
