// Optional revival of timestamps, as Metorial's own SDK does: every `*_at` string becomes a Date.

/**
 * `T` with every string field whose name ends in `_at` turned into a `Date`, at any depth
 * (`string | null` becomes `Date | null`). Free-form objects such as `metadata` keep `unknown`
 * values, which a revived `*_at` inside them still is.
 */
export type WithDates<T> = T extends readonly (infer Item)[]
  ? WithDates<Item>[]
  : T extends object
    ? { [K in keyof T]: K extends `${string}_at` ? DateFor<T[K]> : WithDates<T[K]> }
    : T

type DateFor<V> = V extends string ? Date : WithDates<V>

/** A copy of `value` in which every string under a key ending in `_at` is a `Date`. */
export function reviveDates<T>(value: T): WithDates<T> {
  return revive(value, undefined) as WithDates<T>
}

function revive(value: unknown, key: string | undefined): unknown {
  if (typeof value === 'string') return key?.endsWith('_at') ? new Date(value) : value
  if (Array.isArray(value)) return value.map((item) => revive(item, undefined))
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v, k)]))
  }
  return value
}
