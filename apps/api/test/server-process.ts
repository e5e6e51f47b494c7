import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

const main = join(new URL('../dist/', import.meta.url).pathname, 'main.js')

export interface ServerProcess {
  child: ChildProcess
  exited: Promise<number | null>
  /** What the server printed so far, stdout and stderr. */
  output(): string
  /** The match of `until` in the output. */
  match: RegExpExecArray
  /** The server's base URL, from its banner. */
  url: string
}

/**
 * Starts the built server (`node dist/main.js`) on a free port with `env` over a minimal
 * environment, and resolves once its output matches `until` (by default, the banner).
 */
export function startServerProcess(
  env: Record<string, string>,
  { until = /Session Events API on http:\/\/\S+/, timeoutMs = 60_000 }: { until?: RegExp; timeoutMs?: number } = {},
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [main], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', ...env },
  })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${out}`)), timeoutMs)
    child.stdout!.on('data', () => {
      const match = until.exec(out)
      const banner = /Session Events API on (http:\/\/\S+)/.exec(out)
      if (match && banner) {
        clearTimeout(timer)
        resolve({ child, exited, output: () => out, match, url: banner[1]! })
      }
    })
    void exited.then((code) => reject(new Error(`the server exited with ${code}:\n${out}`)))
  })
}
