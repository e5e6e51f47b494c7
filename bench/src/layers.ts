import { join } from 'node:path'
import type { Dataset } from './datasets.js'
import { inTurn, load, summariseRounds, type LoadRequest, type LoadResult, type RoundsSummary } from './load.js'
import { apiMain, dataDir, peerScript } from './paths.js'
import { readFixtures } from './peers/fixtures.js'
import { freePort, startServer, type ServerProcess } from './processes.js'
import type { Settings } from './throughput.js'

// Where a request's CPU time goes, layer by layer: the limit, the API's stack built up one layer
// at a time (peers/layers.ts, each layer answering the precomputed bytes), then the API itself.
// On getSessionEvent, where the fixed cost of a request is most of it. The servers take turns in
// rounds, as in the throughput suite, and run after it, on the fixtures it captured.

export const LAYER_TARGETS = ['limit', 'hono', 'routes', 'log', 'auth', 'api'] as const
export type LayerTarget = (typeof LAYER_TARGETS)[number]

export const LAYER_LABELS: Record<LayerTarget, string> = {
  limit: 'limit: bare node:http, precomputed bytes',
  hono: 'a bare Hono app on @hono/node-server',
  routes: '+ the generated routes and their validators',
  log: '+ request id, API headers and access log',
  auth: '+ load shedding, the indexed query keys, authentication and the scope check',
  api: 'the API: + store, handler and serialisation',
}

export interface LayersResult {
  settings: Settings
  endpoint: 'get'
  targets: Record<LayerTarget, RoundsSummary>
}

export async function layersSuite(
  dataset: Dataset,
  settings: Settings,
  log: (line: string) => void,
): Promise<LayersResult> {
  const fixturesFile = join(dataDir, 'fixtures.json')
  const auth = { authorization: `Bearer ${dataset.secretKey}` }
  const requests: LoadRequest[] = readFixtures(fixturesFile)
    .filter((f) => f.endpoint === 'get')
    .map((f) => ({ path: f.path, headers: auth }))
  const env = {
    HOST: '127.0.0.1',
    DATABASE_URL: dataset.databaseUrl,
    SEED: 'false',
    RATE_LIMIT_PER_MINUTE: 'off',
    LOG_LEVEL: 'info',
  }
  const servers = {} as Record<LayerTarget, ServerProcess>
  try {
    for (const target of LAYER_TARGETS) {
      const port = await freePort()
      servers[target] =
        target === 'api'
          ? await startServer({ name: target, script: apiMain, port, env: { ...env, PORT: String(port) } })
          : target === 'limit'
            ? await startServer({ name: target, script: peerScript('limit'), args: [fixturesFile, String(port)], port })
            : await startServer({
                name: target,
                script: peerScript('layers'),
                args: [fixturesFile, String(port), target],
                port,
                env,
              })
    }
    const run = (target: LayerTarget, durationS: number) =>
      load({
        url: servers[target].url,
        requests,
        connections: settings.connections,
        durationS,
        serverCpu: servers[target].cpuSeconds,
      })

    for (const target of LAYER_TARGETS) await run(target, settings.warmupS)
    const rounds = Object.fromEntries(LAYER_TARGETS.map((t) => [t, [] as LoadResult[]])) as Record<
      LayerTarget,
      LoadResult[]
    >
    for (let round = 0; round < settings.rounds; round++) {
      const line: string[] = []
      for (const target of inTurn(LAYER_TARGETS, round)) {
        const result = await run(target, settings.durationS)
        if (result.errors > 0) log(`  WARNING: ${target} answered ${result.errors} requests with an error`)
        rounds[target].push(result)
        line.push(`${target} ${result.cpuUsPerReq === null ? '–' : Math.round(result.cpuUsPerReq)}`)
      }
      log(`  layers round ${round + 1}/${settings.rounds}: ${line.join(', ')} µs/req`)
    }
    const targets = Object.fromEntries(LAYER_TARGETS.map((t) => [t, summariseRounds(rounds[t])])) as Record<
      LayerTarget,
      RoundsSummary
    >
    return { settings, endpoint: 'get', targets }
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()))
  }
}
