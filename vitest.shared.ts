import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// Every package writes a JSON report next to its console output; scripts/test.mjs adds the
// reports up into the one line CI reads ("N passed, N failed").
export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: 'reports/vitest.json' },
    testTimeout: 30_000,
    hookTimeout: 120_000,
    setupFiles: [fileURLToPath(new URL('./vitest.timeouts.ts', import.meta.url))],
  },
})
