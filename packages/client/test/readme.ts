// The code blocks of the README, for the tests that type-check and run them.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const packageDir = fileURLToPath(new URL('..', import.meta.url))

/** The first ```ts block after the heading that starts with `heading`. */
export function readmeExample(heading: string): string | undefined {
  const readme = readFileSync(join(packageDir, 'README.md'), 'utf8')
  const start = readme.indexOf(`\n${heading}`)
  if (start === -1) return undefined
  return /```ts\n([\s\S]*?)```/.exec(readme.slice(start))?.[1]
}
