import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { pathToFileURL } from 'node:url'
import { memoryProbe } from './paths.js'
import type { MemoryAnswer } from './peers/memory-probe.js'

// Every server under test runs as its own process, so that the API and its peers are measured
// alike: none shares an event loop with the load generator or with another server.

export interface Memory {
  /** Peak resident set size over the process's life (VmHWM), in bytes. */
  peakRssBytes: number
  /** Resident set size now (VmRSS), in bytes. */
  rssBytes: number
}

export interface ServerProcess {
  name: string
  url: string
  pid: number
  /** Null where /proc is not available. */
  memory(): Memory | null
  /** CPU time the process has used so far (user + system, all threads), in seconds; null without /proc. */
  cpuSeconds: () => number | null
  /**
   * The process's heap and RSS after a GC, as it sees them (process.memoryUsage()): only for a
   * server started with `probeMemory` (peers/memory-probe.ts); null otherwise.
   */
  memoryUsage(): Promise<MemoryAnswer | null>
  stop: () => Promise<void>
}

const running = new Set<ChildProcess>()
// However the driver ends, it does not leave servers behind.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** A port that is free now: the OS picks it, we release it and hand it to a server. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

export function readMemory(pid: number): Memory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
    const peakRssBytes = kb('VmHWM')
    const rssBytes = kb('VmRSS')
    return Number.isFinite(peakRssBytes) ? { peakRssBytes, rssBytes } : null
  } catch {
    return null
  }
}

/** USER_HZ: the unit of /proc/<pid>/stat times, 100 on Linux whatever the kernel's HZ. */
const TICKS_PER_SECOND = 100

export function readCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces, hence the last parenthesis).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return null
  }
}

export interface StartOptions {
  name: string
  /** A Node script and its arguments. */
  script: string
  args?: string[]
  env?: Record<string, string>
  port: number
  /** Where the server's stdout goes (its access log, for the API); /dev/null by default. */
  stdoutFile?: string
  /** Load peers/memory-probe.ts into the process (with --expose-gc), for memoryUsage(). */
  probeMemory?: boolean
  /** How long it may take to answer HTTP (default 30 s; a server that seeds its own store first needs more). */
  startupTimeoutMs?: number
}

/**
 * A Node script as a child process that the driver does not leave behind: the end of its stderr
 * (for errors), when it exits, and a stop that asks (SIGTERM) before it insists (SIGKILL).
 */
function spawnScript(
  options: { script: string; args?: string[]; env?: Record<string, string>; nodeArgs?: string[] },
  stdio: StdioOptions,
) {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.script, ...(options.args ?? [])], {
    env: { ...process.env, ...options.env },
    stdio,
  })
  running.add(child)
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000)
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  void exited.then(() => running.delete(child))
  return {
    child,
    exited,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Starts a server and resolves once it answers HTTP on its port (any status will do). */
export async function startServer(options: StartOptions): Promise<ServerProcess> {
  const out = openSync(options.stdoutFile ?? '/dev/null', 'a')
  const { child, stderr, stop } = spawnScript(
    {
      ...options,
      ...(options.probeMemory && { nodeArgs: ['--expose-gc', '--import', pathToFileURL(memoryProbe).href] }),
    },
    options.probeMemory ? ['ignore', out, 'pipe', 'ipc'] : ['ignore', out, 'pipe'],
  )
  closeSync(out)

  const url = `http://127.0.0.1:${options.port}`
  const startupMs = options.startupTimeoutMs ?? 30_000
  const deadline = Date.now() + startupMs
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`${options.name} exited with code ${child.exitCode} before it answered:\n${stderr()}`)
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })
      await response.arrayBuffer()
      break
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`${options.name} did not answer on ${url} within ${startupMs / 1000} s:\n${stderr()}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  const pid = child.pid!
  return {
    name: options.name,
    url,
    pid,
    memory: () => readMemory(pid),
    cpuSeconds: () => readCpuSeconds(pid),
    memoryUsage: () =>
      options.probeMemory
        ? new Promise<MemoryAnswer | null>((resolve) => {
            const timer = setTimeout(() => resolve(null), 10_000)
            child.once('message', (answer) => {
              clearTimeout(timer)
              resolve(answer as MemoryAnswer)
            })
            child.send('memory')
          })
        : Promise.resolve(null),
    stop,
  }
}

export interface WorkerProcess {
  name: string
  pid: number
  /** Sends the worker a line on its stdin. */
  send(line: string): void
  /** The next line the worker prints on stdout. */
  nextLine(timeoutMs?: number): Promise<string>
  cpuSeconds: () => number | null
  stop: () => Promise<void>
}

/** Starts a Node script that is not a server (the writer) and resolves once it prints "ready". */
export async function startWorker(options: {
  name: string
  script: string
  args?: string[]
  env?: Record<string, string>
  nodeArgs?: string[]
}): Promise<WorkerProcess> {
  const { child, exited, stderr, stop } = spawnScript(options, ['pipe', 'pipe', 'pipe'])

  const lines: string[] = []
  const waiting: ((line: string) => void)[] = []
  let partial = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop()!
    for (const line of parts) {
      const waiter = waiting.shift()
      if (waiter) waiter(line)
      else lines.push(line)
    }
  })
  const nextLine = (timeoutMs = 30_000) =>
    lines.length > 0
      ? Promise.resolve(lines.shift()!)
      : new Promise<string>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`${options.name} printed nothing within ${timeoutMs} ms:\n${stderr()}`)),
            timeoutMs,
          )
          const gone = () => reject(new Error(`${options.name} exited:\n${stderr()}`))
          void exited.then(gone)
          waiting.push((line) => {
            clearTimeout(timer)
            resolve(line)
          })
        })

  const ready = await nextLine()
  if (ready !== 'ready') throw new Error(`${options.name} did not start: ${ready}\n${stderr()}`)
  const pid = child.pid!
  return {
    name: options.name,
    pid,
    send: (line) => void child.stdin!.write(`${line}\n`),
    nextLine,
    cpuSeconds: () => readCpuSeconds(pid),
    stop,
  }
}
