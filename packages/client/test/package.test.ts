// The published shape, checked on the built package: publint and arethetypeswrong are clean,
// and nothing but openapi-fetch and eventsource-parser is imported at run time.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'

const packageDir = fileURLToPath(new URL('..', import.meta.url))
const dist = join(packageDir, 'dist')

function run(command: string, args: string[]) {
  const result = spawnSync('npx', ['--no-install', command, ...args], {
    cwd: packageDir,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

describe('published package', () => {
  beforeAll(() => {
    if (!existsSync(join(dist, 'index.js')))
      throw new Error('Build the client first: npx turbo run build --filter=@session-events/client')
  })

  it('passes publint, warnings included', () => {
    const { status, output } = run('publint', ['--strict'])
    expect(output).toContain('All good!')
    expect(status, output).toBe(0)
  })

  it('passes arethetypeswrong for ESM consumers', () => {
    const { status, output } = run('attw', ['--pack', '.', '--profile', 'esm-only'])
    expect(status, output).toBe(0)
  })

  it('depends on openapi-fetch and eventsource-parser alone, and imports nothing else', () => {
    const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
      dependencies?: object
      peerDependencies?: object
    }
    const runtime = ['eventsource-parser', 'openapi-fetch']
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
