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

const EXAMPLES = [
  ['write', '## Writing'],
  ['follow', '## Following a session'],
] as const

/**
 * Both examples in one program: the client's source and Node's types are read and checked once
 * (two programs took up to 27 s each on a machine loaded by `npm run stress`).
 */
let program: ts.Program | undefined
function checked(): ts.Program {
  program ??= ts.createProgram(
    EXAMPLES.map(([name, heading]) => {
      const file = join(scratch, `${name}.mts`)
      writeFileSync(file, readmeExample(heading) ?? '')
      return file
    }),
    {
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
    },
  )
  return program
}

describe.each(EXAMPLES)('packages/client/README.md %s example', (name, heading) => {
  it('type-checks against the client', () => {
    expect(readmeExample(heading), `a \`\`\`ts block under "${heading}"`).toBeDefined()
    const source = checked().getSourceFile(join(scratch, `${name}.mts`))!
    const problems = [
      ...checked().getSyntacticDiagnostics(source),
      ...checked().getSemanticDiagnostics(source),
      // Options and global problems: the same for both examples.
      ...checked().getOptionsDiagnostics(),
      ...checked().getGlobalDiagnostics(),
    ].map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    expect(problems).toEqual([])
    // The first builds the program: about 5 s alone, up to 22 s in `npm run stress`.
  }, 60_000)
})
