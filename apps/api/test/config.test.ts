import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ConfigError, defaultConfig, loadConfig, SETTINGS, settingsHelp } from '../src/config.js'

// The settings (src/config.ts): each read from its variable, an unset or empty one at its
// default, a bad one refused with its name; what an embedder gives over the defaults; and the
// README's table and --help saying what config.ts does.

const MIB = 1024 * 1024
const shown = Object.values(SETTINGS).filter((setting) => setting.help !== undefined)
const defaultOf = (setting: (typeof shown)[number]) =>
  typeof setting.default === 'function' ? setting.default() : setting.default

describe('loadConfig', () => {
  it('takes each setting from its variable, in its unit', () => {
    const config = loadConfig({
      HOST: '0.0.0.0',
      PORT: '0',
      DATABASE_URL: 'sqlite::memory:',
      SEED: 'no',
      RATE_LIMIT_PER_MINUTE: '7',
      LOG_LEVEL: 'warn',
      DATABASE_POOL_MAX: '25',
      DATABASE_POOL_TIMEOUT_MS: '2000',
      DATABASE_IDLE_TIMEOUT_MS: '0',
      DATABASE_STATEMENT_TIMEOUT_MS: '0',
      CACHE_MB: '2',
      KEY_CACHE_SECONDS: '3',
      STREAMS_PER_KEY: '4',
      SHED_LOAD_AFTER_MS: '50',
      PGAPPNAME: 'mine',
      INIT_CWD: '/somewhere',
    })
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 0,
      databaseUrl: 'sqlite::memory:',
      seed: false,
      rateLimit: { points: 7, durationSeconds: 60 },
      logLevel: 'warn',
      databasePoolMax: 25,
      databasePoolTimeoutMs: 2000,
      databaseIdleTimeoutMs: 0,
      databaseStatementTimeoutMs: 0,
      cacheBytes: 2 * MIB,
      keyCacheMs: 3000,
      streamsPerKey: 4,
      shedLoadAfterMs: 50,
      applicationName: 'mine',
      cwd: '/somewhere',
    })
  })

  it('reads an unset or empty variable as its default, and nothing else of the environment', () => {
    const defaults = loadConfig({})
    expect(loadConfig(Object.fromEntries(shown.map((setting) => [setting.variable, ''])))).toEqual(defaults)
    expect(loadConfig({ UNRELATED: 'x', PGUSER: 'someone' })).toEqual(defaults)
    expect(defaults.databaseUrl).toBeUndefined()
    expect(defaults.cwd).toBe(process.cwd())
  })

  it('turns the rate limit and load shedding off with off', () => {
    for (const off of ['off', 'OFF', 'false']) {
      expect(loadConfig({ RATE_LIMIT_PER_MINUTE: off }).rateLimit).toBe(false)
      expect(loadConfig({ SHED_LOAD_AFTER_MS: off }).shedLoadAfterMs).toBe(false)
    }
    expect(loadConfig({ RATE_LIMIT_PER_MINUTE: '0' }).rateLimit).toBe(false)
    expect(loadConfig({ CACHE_MB: '0' }).cacheBytes).toBe(0)
  })

  it('refuses a bad value with a ConfigError that names the variable and the value', () => {
    for (const [env, message] of [
      [{ PORT: 'eighty' }, /^PORT must be a whole number from 0 to 65535 \(got "eighty"\)$/],
      [{ PORT: '65536' }, /^PORT must be a whole number from 0 to 65535/],
      [
        { DATABASE_URL: 'mysql://u:secret@x/db' },
        /^DATABASE_URL must start with sqlite: or postgres:\/\/ \(got "mysql:\/\/\*\*\*@x\/db"\)$/,
      ],
      [{ DATABASE_URL: 'sqlite:' }, /^DATABASE_URL "sqlite:" needs a path/],
      [{ SEED: 'maybe' }, /^SEED must be true or false \(got "maybe"\)$/],
      [{ DEMO_API_KEY: 'metorial_pk_x' }, /^DEMO_API_KEY must look like a secret key/],
      [{ RATE_LIMIT_PER_MINUTE: 'lots' }, /^RATE_LIMIT_PER_MINUTE must be a whole number of at least 1/],
      [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of fatal, error/],
      [{ DATABASE_POOL_MAX: '0' }, /^DATABASE_POOL_MAX must be a whole number of at least 1 \(got "0"\)$/],
      [{ DATABASE_POOL_TIMEOUT_MS: 'soon' }, /^DATABASE_POOL_TIMEOUT_MS must be a whole number/],
      [{ DATABASE_IDLE_TIMEOUT_MS: '-1' }, /^DATABASE_IDLE_TIMEOUT_MS must be a whole number of at least 0/],
      [{ CACHE_MB: '1.5' }, /^CACHE_MB must be a whole number/],
      [{ KEY_CACHE_SECONDS: '5s' }, /^KEY_CACHE_SECONDS must be a whole number/],
      [{ STREAMS_PER_KEY: '0' }, /^STREAMS_PER_KEY must be a whole number of at least 1/],
      [{ SHED_LOAD_AFTER_MS: '5' }, /^SHED_LOAD_AFTER_MS must be a whole number of at least 10/],
    ] as const) {
      expect(() => loadConfig(env)).toThrow(ConfigError)
      expect(() => loadConfig(env)).toThrow(message)
    }
  })
})

describe('defaultConfig', () => {
  it('is what an empty environment gives, with the settings given over it', () => {
    expect(defaultConfig()).toEqual(loadConfig({}))
    const given = defaultConfig({ port: 0, rateLimit: false, cacheBytes: undefined })
    expect(given).toEqual({ ...loadConfig({}), port: 0, rateLimit: false })
  })
})

describe('what the settings are said to be', () => {
  it('--help lists every setting with its default', () => {
    const help = settingsHelp().replace(/\s+/g, ' ')
    for (const setting of shown) {
      expect(help).toContain(` ${setting.variable} `)
      if (defaultOf(setting) !== '') expect(help).toContain(`(default ${defaultOf(setting)})`)
    }
  })

  it("the README's table of settings lists every setting, and no other, with config.ts's default", () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
    const lines = readme.split('\n')
    const header = lines.indexOf('| setting | meaning | default |')
    expect(header).toBeGreaterThan(0)
    const rows = lines.slice(header + 2, lines.indexOf('', header))
    const table = new Map<string, string>()
    for (const row of rows) {
      const cells = row.split('|').slice(1, -1)
      const variables = [...cells[0]!.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!)
      const defaults = [...cells.at(-1)!.matchAll(/`([^`]*)`/g)].map((m) => m[1]!)
      variables.forEach((variable, i) => table.set(variable, defaults[i] ?? ''))
    }
    expect([...table.keys()].sort()).toEqual(shown.map((setting) => setting.variable).sort())
    for (const setting of shown) {
      const documented = table.get(setting.variable)!
      // A long default is shown cut short, with an ellipsis.
      if (documented.endsWith('…')) expect(defaultOf(setting).startsWith(documented.slice(0, -1))).toBe(true)
      else expect(documented, setting.variable).toBe(defaultOf(setting))
    }
  })
})
