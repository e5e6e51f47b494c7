import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

/** The Redocly HTML reference from @session-events/openapi (built by `npm run docs`), if built. */
export function loadDocsHtml(): string | undefined {
  try {
    return readFileSync(createRequire(import.meta.url).resolve('@session-events/openapi/docs.html'), 'utf8')
  } catch {
    return undefined
  }
}
