// The typed client of the Session Events API. Types come from the spec through
// src/generated/schema.ts (openapi-typescript); requests go through openapi-fetch.
export type { paths, components, operations } from './generated/schema.js'
