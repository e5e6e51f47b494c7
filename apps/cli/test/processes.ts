// Real processes for the end-to-end tests: the API server (apps/api/dist/main.js) on a free port
// over a temporary SQLite file seeded by its seed-cli.js, and the built CLI (dist/main.js).
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { SeedSummary } from '@session-events/api'
import { onTestFinished } from 'vitest'

const require = createRequire(import.meta.url)
const apiDist = dirname(require.resolve('@session-events/api'))
export const cliMain = fileURLToPath(new URL('../dist/main.js', import.meta.url))

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs a node script to the end; never throws on a failing exit code. `input` is written to its
 * stdin, which is then closed.
 */
export function runNode(args: string[], env: NodeJS.ProcessEnv = {}, input = ''): Promise<Run> {
  return startNode(args, env, input).finished
}

export interface Started {
  child: ChildProcess
  /** What it has written so far. */
  output: { stdout: string; stderr: string }
  /** Resolves once it has printed text matching `pattern` on stdout or stderr. */
  printed(pattern: RegExp): Promise<RegExpExecArray>
  finished: Promise<Run & { signal: NodeJS.Signals | null }>
}

/** Starts a node script, for a test that acts while it runs (signals it, say). */
export function startNode(args: string[], env: NodeJS.ProcessEnv = {}, input = ''): Started {
  const child = spawn(process.execPath, args, { env: { ...process.env, NO_COLOR: '1', ...env } })
  // A test that fails or times out before its process ends leaves none running (a tail follows forever).
  try {
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
  } catch {
    // Not in a test (beforeAll): whoever started it waits for it.
  }
  const output = { stdout: '', stderr: '' }
  const watchers: (() => void)[] = []
  const onOutput = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    output[stream] += chunk.toString()
    // A copy: a watcher that is satisfied removes itself from the list.
    for (const watcher of watchers.slice()) watcher()
  }
  child.stdout.on('data', onOutput('stdout'))
  child.stderr.on('data', onOutput('stderr'))
  child.stdin.on('error', () => {}) // a script that never reads its stdin
  child.stdin.end(input)
  const finished = new Promise<Run & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, ...output }))
  })
  return {
    child,
    output,
    finished,
    printed(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output.stdout) ?? pattern.exec(output.stderr)
          if (!match) return
          watchers.splice(watchers.indexOf(check), 1)
          resolve(match)
        }
        watchers.push(check)
        check()
        void finished.then(() =>
          reject(new Error(`exited without printing ${pattern}:\n${output.stdout}\n${output.stderr}`)),
        )
      })
    },
  }
}

export interface ApiServer {
  url: string
  summary: SeedSummary
  stop(): Promise<void>
}

/** Seeds a fresh SQLite file with seed-cli.js, then serves it with main.js on a free port. */
export async function startApiServer(seed: { sessions: number; events: number }): Promise<ApiServer> {
  const dir = mkdtempSync(join(tmpdir(), 'session-events-cli-'))
  const env = { DATABASE_URL: `sqlite:${join(dir, 'events.db')}`, LOG_LEVEL: 'warn' }
  const seeded = await runNode(
    [join(apiDist, 'seed-cli.js'), '--sessions', String(seed.sessions), '--events', String(seed.events), '--json'],
    env,
  )
  if (seeded.code !== 0) throw new Error(`seed-cli.js failed (${seeded.code}): ${seeded.stderr}`)
  const summary = JSON.parse(seeded.stdout.trim().split('\n').at(-1)!) as SeedSummary

  const server = spawn(process.execPath, [join(apiDist, 'main.js')], {
    env: {
      ...process.env,
      ...env,
      HOST: '127.0.0.1',
      PORT: '0',
      SEED: 'false',
      RATE_LIMIT_PER_MINUTE: 'off',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const url = await listeningUrl(server)
  return {
    url,
    summary,
    async stop() {
      if (server.exitCode === null) {
        const exited = new Promise((resolve) => server.once('exit', resolve))
        server.kill('SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

// PORT=0 lets the server pick a free port; it says which in its start-up line.
function listeningUrl(server: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /Session Events API on (http:\/\/\S+)/.exec(output)
      if (match) {
        server.stdout!.off('data', onData)
        server.stdout!.resume() // keep draining, so the server never blocks on a full pipe
        resolve(match[1]!)
      }
    }
    server.stdout!.on('data', onData)
    server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
    server.once('exit', (code) => reject(new Error(`the API server exited (${code}) before listening:\n${output}`)))
  })
}
