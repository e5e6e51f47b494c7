import { defineConfig, mergeConfig } from 'vitest/config'
import shared from '../../vitest.shared.ts'

// The browser tests start the API in process and drive Chromium: one file at a time, with time
// for the browser to start.
export default mergeConfig(
  shared,
  defineConfig({ test: { include: ['test/**/*.test.ts'], fileParallelism: false, testTimeout: 60_000 } }),
)
