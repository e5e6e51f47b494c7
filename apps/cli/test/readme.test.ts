// The client README's example, as a consumer package would run it: copied into a scratch package
// that depends on @session-events/client, type-checked with the repository's strict settings,
// then run with node against the real API served over HTTP. And this package's README, checked
// against the CLI's own --help: every command and option it has is documented.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createApp, openStore, seed, serve } from '@session-events/api'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliMain, runNode } from './processes.js'

process.env.LOG_LEVEL = 'silent' // the app's request log

const require = createRequire(import.meta.url)
const clientDir = dirname(require.resolve('@session-events/client/package.json'))
const nodeTypes = dirname(require.resolve('@types/node/package.json'))

function readmeExample(): string {
  const readme = readFileSync(join(clientDir, 'README.md'), 'utf8')
  const example = /## Example[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  if (!example) throw new Error('packages/client/README.md has no ```ts block under "## Example"')
  return example
}

let scratch: string
let file: string
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'session-events-readme-'))
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ type: 'module', private: true }))
  mkdirSync(join(scratch, 'node_modules', '@session-events'), { recursive: true })
  symlinkSync(clientDir, join(scratch, 'node_modules', '@session-events', 'client'), 'dir')
  file = join(scratch, 'example.ts')
  writeFileSync(file, readmeExample())
})
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe('packages/client/README.md example', () => {
  it('type-checks', () => {
    const program = ts.createProgram([file], {
      strict: true,
      noUncheckedIndexedAccess: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [dirname(nodeTypes)],
    })
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    expect(problems).toEqual([])
  })

  it('runs against the API', async () => {
    const store = await openStore('sqlite::memory:')
    const { instances } = await seed(store, { sessions: 1, events: 30 })
    const server = await serve({
      app: createApp({ store, config: { logLevel: 'silent', rateLimit: false, shedLoadAfterMs: false } }),
      port: 0,
    })
    try {
      const sessionId = instances[0]!.sessions[0]!.id
      // Node runs the TypeScript as it is: the example uses no syntax that needs compiling.
      writeFileSync(join(scratch, 'example.mjs'), readmeExample())
      const run = await runNode([join(scratch, 'example.mjs'), sessionId], {
        SESSION_EVENTS_API_KEY: instances[0]!.secret_key,
        SESSION_EVENTS_BASE_URL: server.url,
      })
      expect(run.stderr).toBe('')
      expect(run.code).toBe(0)
      expect(run.stdout).toMatch(/^newest: sev_\w{22}(, sev_\w{22}){4}$/m)
      expect(run.stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \w+: .+$/m)
      expect(run.stdout).toMatch(/^404 not_found: The requested session-event could not be found\. \(req_\w{22}\)$/m)
    } finally {
      await server.close()
      await store.close()
    }
  })
})

describe('apps/cli/README.md', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

  it.each([
    [['sessions', 'list']],
    [['events', 'list']],
    [['events', 'get']],
    [['events', 'tail']],
    [['events', 'append']],
    [['run']],
    [[]],
  ])('documents every option of session-events %j', async (command) => {
    const help = await runNode([cliMain, ...command, '--help'])
    expect(help.code).toBe(0)
    if (command.length > 0) expect(readme).toContain(`session-events ${command.join(' ')}`)
    const options = [...help.stdout.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)]
      .map((match) => match[1]!)
      .filter((option) => option !== '--help' && option !== '--version')
    expect(options.length).toBeGreaterThan(0)
    for (const option of options) expect(readme, option).toContain(`\`${option}`)
  })
})
