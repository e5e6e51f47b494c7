import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { benchDir, repoDir } from './paths.js'

// What a result was measured on and with: the machine, the versions and the commit.

export interface Machine {
  cpu: string
  cores: number
  memoryBytes: number
  os: string
  node: string
  loadavgAtStart: number[]
}

export function machine(): Machine {
  const list = cpus()
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryBytes: totalmem(),
    os: `${process.platform} ${release()}`,
    node: process.version,
    loadavgAtStart: loadavg().map((n) => Math.round(n * 100) / 100),
  }
}

/** The version of an installed package, as Node would find it from `fromDir`. */
function installedVersion(name: string, fromDir: string): string | null {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const file = join(dir, 'node_modules', name, 'package.json')
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
    if (dirname(dir) === dir) return null
  }
}

export function versions(): Record<string, string | null> {
  const apiDir = join(repoDir, 'apps/api')
  const fastifyDir = join(repoDir, 'node_modules/fastify')
  const fromApi = [
    '@session-events/api',
    'hono',
    '@hono/node-server',
    '@hono/zod-openapi',
    'zod',
    'kysely',
    'better-sqlite3',
    'pino',
  ]
  return {
    node: process.version,
    npm: /npm\/(\S+)/.exec(process.env.npm_config_user_agent ?? '')?.[1] ?? null,
    ...Object.fromEntries(fromApi.map((name) => [name, installedVersion(name, apiDir)])),
    fastify: installedVersion('fastify', benchDir),
    'fast-json-stringify': installedVersion('fast-json-stringify', fastifyDir),
    autocannon: installedVersion('autocannon', benchDir),
  }
}

export function git(): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoDir, encoding: 'utf8' }).trim()
    // Uncommitted changes in what is measured: the API's source and the benchmark.
    const status = execFileSync(
      'git',
      ['status', '--porcelain', '--', 'apps/api/src', 'bench/src', 'scripts/bench.mjs'],
      {
        cwd: repoDir,
        encoding: 'utf8',
      },
    )
    return { commit, dirty: status.trim() !== '' }
  } catch {
    return { commit: null, dirty: null }
  }
}
