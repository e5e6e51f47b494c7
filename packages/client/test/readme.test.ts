// The README's write and follow examples, type-checked against the client's source with the
// repository's strict settings. (apps/cli/test/readme.test.ts runs the read example against the
// real API; test/tail.e2e.test.ts runs the follow example.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import ts from 'typescript'
import { afterAll, describe, expect, it } from 'vitest'
import { packageDir, readmeExample } from './readme.js'

const nodeTypes = dirname(createRequire(import.meta.url).resolve('@types/node/package.json'))
const scratch = mkdtempSync(join(tmpdir(), 'session-events-client-readme-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe.each([
  ['write', '## Writing'],
  ['follow', '## Following a session'],
])('packages/client/README.md %s example', (name, heading) => {
  it('type-checks against the client', () => {
    const example = readmeExample(heading)
    expect(example, `a \`\`\`ts block under "${heading}"`).toBeDefined()
    const file = join(scratch, `${name}.mts`)
    writeFileSync(file, example!)
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
      baseUrl: packageDir,
      paths: { '@session-events/client': ['src/index.ts'] },
    })
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    expect(problems).toEqual([])
  }, 30_000)
})
