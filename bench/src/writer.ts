import { createInterface } from 'node:readline'
import { openStore, type Store } from '@session-events/api'
import { hashSecret } from '@session-events/api/internal/api-keys.js'

// A writer beside the API, as ingestion would be: another process appending log events to a
// session of its own on the same database, in small transactions at a steady pace. It writes only
// while told to, on stdin: "start" starts it, "stop" stops it and prints what it wrote as one JSON
// line. The end of stdin (or SIGTERM) closes the store and exits. It prints "ready" once its
// session and run exist.
// Usage: DATABASE_URL=sqlite:… node writer.js SECRET_KEY EVENTS_PER_COMMIT COMMITS_PER_SECOND

export interface WriterReport {
  events: number
  commits: number
  seconds: number
}

const [secret, eventsArg, commitsArg] = process.argv.slice(2)
const eventsPerCommit = Number(eventsArg)
const commitsPerSecond = Number(commitsArg)
if (!secret || !(eventsPerCommit > 0) || !(commitsPerSecond > 0)) {
  console.error('usage: DATABASE_URL=… node writer.js SECRET_KEY EVENTS_PER_COMMIT COMMITS_PER_SECOND')
  process.exit(2)
}

const store: Store = await openStore(process.env.DATABASE_URL)
const key = await store.reader.findApiKey(hashSecret(secret))
if (!key) throw new Error('writer: no API key with that secret in the dataset')

const server = await store.seeding.createServer({ name: 'bench-writer', description: null, type: 'custom' })
const version = await store.seeding.createServerVersion({ serverId: server.id })
const deployment = await store.seeding.createServerDeployment({
  instanceId: key.instance_id,
  serverId: server.id,
  name: 'bench writer',
  description: null,
})
const session = await store.writer.createSession({ instanceId: key.instance_id })
const serverSession = await store.seeding.createServerSession({
  sessionId: session.id,
  serverDeploymentId: deployment.id,
  mcp: {
    object: 'mcp',
    version: '2025-03-26',
    connection_type: 'streamable_http',
    client: { object: 'session.server_session.client', name: 'bench', version: '1.0.0', capabilities: {} },
    server: {
      object: 'session.server_session.server',
      name: 'bench-writer',
      version: '1.0.0',
      capabilities: { logging: {} },
    },
  },
})
const run = await store.seeding.createServerRun({
  serverSessionId: serverSession.id,
  serverVersionId: version.id,
  type: 'hosted',
  startedAt: new Date(),
})

let timer: NodeJS.Timeout | undefined
let report: WriterReport = { events: 0, commits: 0, seconds: 0 }
let startedAt = 0
let due = 0
let writing: Promise<void> = Promise.resolve()

/** Commits what is due since the start (a late timer catches up), one transaction at a time. */
function tick(): void {
  writing = writing.then(async () => {
    const target = Math.floor(((performance.now() - startedAt) / 1000) * commitsPerSecond)
    while (due < target && timer) {
      const lines = Array.from({ length: eventsPerCommit }, (_, i) => ({
        serverRunId: run.id,
        lines: [
          {
            type: i % 3 === 0 ? ('stderr' as const) : ('stdout' as const),
            line: `bench writer: commit ${due}, event ${i}`,
          },
        ],
      }))
      await store.seeding.appendLogEvents(lines)
      due += 1
      report.commits += 1
      report.events += eventsPerCommit
    }
  })
}

function start(): void {
  if (timer) return
  report = { events: 0, commits: 0, seconds: 0 }
  startedAt = performance.now()
  due = 0
  timer = setInterval(tick, Math.max(1, Math.floor(1000 / commitsPerSecond)))
}

function stop(): void {
  if (!timer) return
  clearInterval(timer)
  timer = undefined
  void writing.then(() => {
    report.seconds = (performance.now() - startedAt) / 1000
    process.stdout.write(`${JSON.stringify(report)}\n`)
  })
}

function exit(): void {
  if (timer) clearInterval(timer)
  timer = undefined
  void writing.then(() => store.close()).then(() => process.exit(0))
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line === 'start') start()
    else if (line === 'stop') stop()
  })
  .on('close', exit)
process.on('SIGTERM', exit)

process.stdout.write('ready\n')
