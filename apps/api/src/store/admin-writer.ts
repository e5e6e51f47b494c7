import type { Kysely } from 'kysely'
import { hashSecret } from '../api-keys.js'
import type { Database } from './db.js'
import { apiKeyRow, instanceRow } from './new-rows.js'
import type { AdminWriter } from './types.js'

// The operators' writes (npm run admin, and the seed): instances and their API keys.

export class SqlAdminWriter implements AdminWriter {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  async createInstance(input: Parameters<AdminWriter['createInstance']>[0]): Promise<{ id: string }> {
    const row = instanceRow(input)
    await this.#db.insertInto('instances').values(row).execute()
    return { id: row.id }
  }

  async createApiKey(input: Parameters<AdminWriter['createApiKey']>[0]): Promise<{ id: string; secret: string }> {
    const { row, secret } = apiKeyRow(input)
    await this.#db.insertInto('api_keys').values(row).execute()
    return { id: row.id, secret }
  }

  async revokeApiKey(secret: string, at: Date = new Date()): Promise<boolean> {
    const result = await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: at.toISOString() })
      .where('secret_hash', '=', hashSecret(secret))
      .where('revoked_at', 'is', null)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }
}
