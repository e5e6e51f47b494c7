import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = new URL('../../', import.meta.url).pathname

describe('the spec passes its own checks', () => {
  it('lints clean with Redocly (npm run lint:spec): no error, no warning', async () => {
    const { stdout, stderr } = await run(
      'npx',
      ['redocly', 'lint', 'openapi/session-events.yaml', '--config', 'redocly.yaml'],
      {
        cwd: root,
      },
    )
    expect(`${stdout}${stderr}`).toMatch(/Your API description is valid/)
  }, 60_000)

  it('matches the committed generated code (npm run generate:check)', async () => {
    const { stdout } = await run('npm', ['run', '-s', 'generate:check'], { cwd: root })
    expect(stdout).toMatch(/up to date/)
  }, 60_000)
})
