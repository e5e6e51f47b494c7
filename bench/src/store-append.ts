import { createInterface } from 'node:readline'
import { openStore } from '@session-events/api'
import { hashSecret } from '@session-events/api/internal/api-keys.js'
import { logLines } from './api.js'

// The store alone, in process: StoreWriter.appendEvent in a loop, one call after the other, as the
// API's POST /sessions/{id}/events calls it, without HTTP, validation or the API around it. What
// the write suite puts beside the API over HTTP. Told on stdin:
//   run LINES SECONDS   appends events of LINES lines for SECONDS; answers
//                       {"calls":…,"seconds":…,"cpuSeconds":…} (its own CPU time; on PostgreSQL the
//                       server's is not in it)
// It prints "ready" once its session and run exist.
// Usage: DATABASE_URL=… node store-append.js SECRET_KEY

const [secret] = process.argv.slice(2)
if (!secret) throw new Error('usage: DATABASE_URL=… node store-append.js SECRET_KEY')
const store = await openStore(process.env.DATABASE_URL)
const key = await store.reader.findApiKey(hashSecret(secret))
if (!key) throw new Error('store-append: no API key with that secret')
const session = await store.writer.createSession({ instanceId: key.instance_id })
const run = await store.writer.startServerRun({
  instanceId: key.instance_id,
  sessionId: session.id,
  run: { type: 'hosted', server: { name: 'bench-store-append', type: 'custom' } },
})

async function runFor(lines: number, seconds: number): Promise<void> {
  const batch = logLines(lines)
  const cpu = process.cpuUsage()
  const started = performance.now()
  const until = started + seconds * 1000
  let calls = 0
  while (performance.now() < until) {
    await store.writer.appendEvent({ sessionId: session.id, serverRunId: run.id, lines: batch })
    calls += 1
  }
  const used = process.cpuUsage(cpu)
  process.stdout.write(
    `${JSON.stringify({ calls, seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 })}\n`,
  )
}

let queue: Promise<void> = Promise.resolve()
createInterface({ input: process.stdin })
  .on('line', (line) => {
    const [command, lines, seconds] = line.split(' ')
    if (command === 'run') queue = queue.then(() => runFor(Number(lines), Number(seconds)))
  })
  .on('close', () => void queue.then(() => store.close()).then(() => process.exit(0)))

process.stdout.write('ready\n')
