import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** A file that @session-events/openapi builds (the spec bundle, the HTML reference), if built. */
export function loadBuiltAsset(name: 'session-events.json' | 'docs.html'): string | undefined {
  try {
    return readFileSync(require.resolve(`@session-events/openapi/${name}`), 'utf8')
  } catch {
    return undefined
  }
}
