// The published shape, checked on the built package: publint and arethetypeswrong are clean,
// and nothing but openapi-fetch and eventsource-parser is imported at run time. The package is
// packed once (npm pack, as it would be published) and both tools read that tarball; they run
// from node_modules/.bin, not through npx (an npm start-up each, seconds on a busy machine).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const packageDir = fileURLToPath(new URL('..', import.meta.url))
const dist = join(packageDir, 'dist')
const bin = (name: string) => fileURLToPath(new URL(`../../../node_modules/.bin/${name}`, import.meta.url))

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, {
    cwd: packageDir,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

describe('published package', () => {
  let packed: string
  let tarball: string

  beforeAll(() => {
    if (!existsSync(join(dist, 'index.js')))
      throw new Error('Build the client first: npx turbo run build --filter=@session-events/client')
    packed = mkdtempSync(join(tmpdir(), 'session-events-client-pack-'))
    const { status, output } = run('npm', ['pack', '--pack-destination', packed, '--silent'])
    if (status !== 0) throw new Error(`npm pack failed: ${output}`)
    tarball = join(packed, readdirSync(packed).find((f) => f.endsWith('.tgz'))!)
  })
  afterAll(() => {
    if (packed) rmSync(packed, { recursive: true, force: true })
  })

  // Each runs a tool of its own in a process (attw a TypeScript program): about 1 and 7 s alone,
  // up to 23 s in `npm run stress`, hence a minute.
  it('passes publint, warnings included', () => {
    const { status, output } = run(bin('publint'), ['run', tarball, '--strict'])
    expect(output).toContain('All good!')
    expect(status, output).toBe(0)
  }, 60_000)

  it('passes arethetypeswrong for ESM consumers', () => {
    const { status, output } = run(bin('attw'), [tarball, '--profile', 'esm-only'])
    expect(status, output).toBe(0)
  }, 60_000)

  it('depends on openapi-fetch, eventsource-parser and uuid alone, and imports nothing else', () => {
    const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
      dependencies?: object
      peerDependencies?: object
    }
    const runtime = ['eventsource-parser', 'openapi-fetch', 'uuid']
    expect(Object.keys(pkg.dependencies ?? {})).toEqual(runtime)
    expect(pkg.peerDependencies).toBeUndefined()
    const imported = new Set<string>()
    for (const file of readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'))) {
      const code = readFileSync(join(dist, file), 'utf8')
      for (const [, specifier] of code.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        if (!specifier!.startsWith('.')) imported.add(specifier!)
      }
    }
    expect([...imported].sort()).toEqual(runtime)
  })
})
