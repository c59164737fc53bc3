/**
 * A complete store `Entry` for tests that write to a store directly: sensible values for every field,
 * overridden by what the test cares about.
 */
import type { Entry } from "../../src/Store.js"

export const makeEntry = (fields: Partial<Entry> & Pick<Entry, "expiresAt">): Entry => ({
  version: 0,
  userId: "user",
  createdAt: 0,
  renewedAt: fields.createdAt ?? 0,
  extendedUntil: fields.expiresAt,
  lastSeenAt: fields.createdAt ?? 0,
  secret: "c2VjcmV0LWRpZ2VzdC1vZi10aGUtaWQ",
  previous: undefined,
  previousUntil: 0,
  userAgent: undefined,
  address: undefined,
  data: null,
  ...fields
})

/**
 * `entry` changed by `fields` as a store "update" of it must be: with the next version, the one the
 * compare-and-set expects after `entry`.
 */
export const nextVersion = (entry: Entry, fields: Partial<Omit<Entry, "version">> = {}): Entry => ({
  ...entry,
  ...fields,
  version: entry.version + 1
})
