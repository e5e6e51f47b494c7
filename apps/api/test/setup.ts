import { afterAll } from 'vitest'
import { cleanUpTestStores } from './backend.js'

// Runs in every test file (vitest setupFiles): whatever the file opened through backend.ts is
// closed and dropped when it ends, after the file's own afterAll hooks.
afterAll(cleanUpTestStores)
