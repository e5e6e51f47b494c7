import type { LogLine, Mcp, ServerRun } from '@session-events/server-stubs'
import type { AdminWriter, NewLogEvent, SeedWriter } from './store/types.js'

// Demo data that looks like the real thing: two instances (so isolation can be tried), servers
// from the catalogue and a custom one, deployments, server sessions over each transport, runs
// that are active, completed and failed, log lines on stdout and stderr, and the errors that
// ended the failed runs.

/** How much demo data, unless told: sessions per instance, `server_logs` events per session, instances. */
export const SEED_DEFAULTS = { sessions: 3, events: 500, instances: 2 }

export interface SeedOptions {
  /** Sessions per instance. Default: SEED_DEFAULTS. */
  sessions?: number
  /** `server_logs` events per session. Default: SEED_DEFAULTS. */
  events?: number
  /** How many instances. Default: SEED_DEFAULTS. */
  instances?: number
  /** The secret key of the first instance (otherwise a random one). */
  secretKey?: string
  /** The time of the last event. Default: now. */
  now?: Date
  /** Called as events are written. */
  onProgress?: (written: number, total: number) => void
}

export interface SeedSummary {
  instances: {
    id: string
    secret_key: string
    publishable_key: string
    revoked_key: string
    sessions: { id: string; events: number }[]
  }[]
}

const CATALOGUE = [
  { name: 'GitHub', description: 'Read repositories, issues and pull requests.', mcp: 'github-mcp-server' },
  { name: 'Slack', description: 'Read and post messages in Slack channels.', mcp: 'slack-mcp' },
  { name: 'PostgreSQL', description: 'Query a PostgreSQL database, read-only.', mcp: 'postgres-mcp' },
  { name: 'Brave Search', description: null, mcp: 'brave-search' },
] as const

const CLIENTS = [
  { name: 'claude-desktop', version: '0.10.4' },
  { name: 'cursor', version: '1.2.3' },
  { name: 'metorial-playground', version: '2025.7.1' },
] as const

const TRANSPORTS = ['streamable_http', 'sse', 'websocket'] as const

const STDOUT = [
  'Server listening on stdio',
  'MCP handshake complete (protocol 2025-03-26)',
  'tools/list -> 14 tools',
  'tools/call search_issues {"query":"is:open label:bug","per_page":20}',
  'tools/call get_file_contents {"path":"README.md","ref":"main"}',
  'resources/read repo://metorial/metorial/contents/package.json',
  'GET https://api.github.com/repos/metorial/metorial/issues 200 (183 ms)',
  'cache hit: rate_limit (remaining 4873/5000)',
  'prompt completed in 412 ms',
  'sent 3 notifications/progress',
]
const STDERR = [
  'warn: GITHUB_TOKEN has no repo scope, falling back to public data',
  'warn: slow response from upstream (2.4 s)',
  'debug: retrying request (attempt 2 of 3)',
  'error: upstream returned 502 Bad Gateway',
  'warn: deprecated tool "search_code" was called',
  'DeprecationWarning: punycode module is deprecated',
]
const RUN_ERRORS = [
  {
    code: 'process_exited',
    message: 'The server process exited with code 1 before it answered the MCP handshake.',
    metadata: { exit_code: 1 },
  },
  { code: 'startup_timeout', message: 'The server did not start within 30 seconds.', metadata: { timeout_ms: 30000 } },
  {
    code: 'out_of_memory',
    message: 'The server process was stopped after using more than 512 MB of memory.',
    metadata: { limit_mb: 512 },
  },
] as const

/** A small deterministic generator, so that the same seed call writes the same shapes. */
function random(seed: number) {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 0x100000000
  }
}

const BATCH_EVENTS = 5_000
const EVENT_SPACING_MS = 250

/** Writes demo data through the store's seed and operator writers (the API's rows and id order). */
export async function seed(
  store: { admin: AdminWriter; seeding: SeedWriter },
  options: SeedOptions = {},
): Promise<SeedSummary> {
  const { admin, seeding } = store
  const sessionsPerInstance = options.sessions ?? SEED_DEFAULTS.sessions
  const eventsPerSession = options.events ?? SEED_DEFAULTS.events
  const instanceCount = options.instances ?? SEED_DEFAULTS.instances
  const rand = random(0x5eed + sessionsPerInstance * 31 + eventsPerSession)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!

  const total = instanceCount * sessionsPerInstance * eventsPerSession
  let written = 0
  const end = (options.now ?? new Date()).getTime()
  // Each session takes its own stretch of time, one after the other, ending at `now`.
  const sessionSpan = (eventsPerSession + 20) * EVENT_SPACING_MS
  let sessionStart = end - instanceCount * sessionsPerInstance * sessionSpan
  const setupAt = new Date(sessionStart - 86_400_000)

  const catalogue = []
  for (const server of CATALOGUE) {
    const { id } = await seeding.createServer({
      name: server.name,
      description: server.description,
      type: 'public',
      at: setupAt,
    })
    const version = await seeding.createServerVersion({ serverId: id, at: setupAt })
    catalogue.push({ ...server, id, versionId: version.id })
  }

  const summary: SeedSummary = { instances: [] }
  for (let i = 0; i < instanceCount; i++) {
    const instance = await admin.createInstance({
      name: i === 0 ? 'Acme Production' : `Globex Staging ${i}`,
      at: setupAt,
    })
    const secret = await admin.createApiKey({
      instanceId: instance.id,
      kind: 'secret',
      ...(i === 0 && options.secretKey !== undefined && { secret: options.secretKey }),
      at: setupAt,
    })
    const publishable = await admin.createApiKey({ instanceId: instance.id, kind: 'publishable', at: setupAt })
    const revoked = await admin.createApiKey({ instanceId: instance.id, kind: 'secret', revoked: true, at: setupAt })

    const custom = await seeding.createServer({
      name: `${i === 0 ? 'acme' : 'globex'}-internal-tools`,
      description: 'Internal tools: deploys, feature flags and the on-call rota.',
      type: 'custom',
      at: setupAt,
    })
    const customVersion = await seeding.createServerVersion({ serverId: custom.id, at: setupAt })
    const servers = [
      ...catalogue,
      { id: custom.id, versionId: customVersion.id, name: 'internal-tools', description: null, mcp: 'internal-tools' },
    ]
    const deployments = []
    for (const [n, server] of servers.entries()) {
      const deployment = await seeding.createServerDeployment({
        instanceId: instance.id,
        serverId: server.id,
        name: n === 0 ? `${server.name} (read-only)` : n === 3 ? null : server.name,
        description: n === 1 ? 'Posts to #incidents only.' : null,
        metadata: n === 0 ? { team: 'platform', read_only: true } : {},
        at: setupAt,
      })
      deployments.push({ ...deployment, server })
    }

    const sessions: { id: string; events: number }[] = []
    for (let s = 0; s < sessionsPerInstance; s++) {
      const startAt = sessionStart
      sessionStart += sessionSpan
      const session = await seeding.createSession({ instanceId: instance.id, at: new Date(startAt) })
      const client = pick(CLIENTS)

      // Two or three servers per session, each with one or two runs.
      const runs: { id: string; status: ServerRun['status'] }[] = []
      const serverCount = 2 + (s % 2)
      for (let k = 0; k < serverCount; k++) {
        const deployment = deployments[(s + k) % deployments.length]!
        const mcp: Mcp = {
          object: 'mcp',
          version: '2025-03-26',
          connection_type: TRANSPORTS[(s + k) % TRANSPORTS.length]!,
          client: {
            object: 'session.server_session.client',
            name: client.name,
            version: client.version,
            capabilities: { sampling: {}, roots: { listChanged: true } },
          },
          server:
            k === 2
              ? null
              : {
                  object: 'session.server_session.server',
                  name: deployment.server.mcp,
                  version: '1.2.0',
                  capabilities: { tools: { listChanged: true }, logging: {} },
                },
        }
        const clientMessages = 3 + Math.floor(rand() * 40)
        const serverSession = await seeding.createServerSession({
          sessionId: session.id,
          serverDeploymentId: deployment.id,
          mcp,
          clientMessageCount: clientMessages,
          serverMessageCount: clientMessages - 1,
          at: new Date(startAt + k),
        })
        // The first session of an instance shows every status: active, completed and failed.
        const statuses =
          k === 0 ? (['completed', 'active'] as const) : k === 1 ? (['failed'] as const) : (['active'] as const)
        for (const status of statuses) {
          const run = await seeding.createServerRun({
            serverSessionId: serverSession.id,
            serverVersionId: deployment.server.versionId,
            type: k === 2 ? 'external' : 'hosted',
            startedAt: new Date(startAt + 10 + k),
            at: new Date(startAt + 5 + k),
          })
          runs.push({ id: run.id, status })
        }
      }

      // Log events, spread over the runs in time order.
      let at = startAt + 1000
      let batch: NewLogEvent[] = []
      for (let e = 0; e < eventsPerSession; e++) {
        const lines: LogLine[] = []
        const count = 1 + Math.floor(rand() * 4)
        for (let l = 0; l < count; l++) {
          const stderr = rand() < 0.3
          lines.push({ type: stderr ? 'stderr' : 'stdout', line: stderr ? pick(STDERR) : pick(STDOUT) })
        }
        batch.push({ serverRunId: runs[e % runs.length]!.id, lines, at: new Date(at) })
        at += EVENT_SPACING_MS
        if (batch.length >= BATCH_EVENTS) {
          await seeding.appendLogEvents(batch)
          written += batch.length
          options.onProgress?.(written, total)
          batch = []
        }
      }
      if (batch.length > 0) {
        await seeding.appendLogEvents(batch)
        written += batch.length
        options.onProgress?.(written, total)
      }

      let errorEvents = 0
      for (const run of runs) {
        at += EVENT_SPACING_MS
        if (run.status === 'completed') {
          await seeding.updateServerRun(run.id, { status: 'completed', stoppedAt: new Date(at), at: new Date(at) })
        } else if (run.status === 'failed') {
          await seeding.recordServerRunError({ serverRunId: run.id, ...pick(RUN_ERRORS), at: new Date(at) })
          errorEvents += 1
        }
      }
      sessions.push({ id: session.id, events: eventsPerSession + errorEvents })
    }

    summary.instances.push({
      id: instance.id,
      secret_key: secret.secret,
      publishable_key: publishable.secret,
      revoked_key: revoked.secret,
      sessions,
    })
  }
  return summary
}
