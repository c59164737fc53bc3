/**
 * Freezing decoded session data, so that one session object can be handed to many requests: a handler
 * that changes `session.data` in place would otherwise change what every later request of that session
 * sees.
 *
 * Only plain data (objects with `Object.prototype` or no prototype, arrays, primitives) is frozen; data
 * holding anything else (a `Date`, a `Map`, a class instance) cannot be made immutable by freezing, so it
 * is not shared: it is decoded again for every request.
 *
 * @internal
 */

const isPlain = (value: unknown, depth: number): boolean => {
  if (value === null || typeof value !== "object") return typeof value !== "function"
  if (depth > 64) return false
  if (Array.isArray(value)) {
    for (const item of value) if (!isPlain(item, depth + 1)) return false
    return true
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  for (const key in value) if (!isPlain((value as Record<string, unknown>)[key], depth + 1)) return false
  return true
}

const freezeAll = (value: unknown): void => {
  if (value === null || typeof value !== "object") return
  for (const key in value) freezeAll((value as Record<string, unknown>)[key])
  Object.freeze(value)
}

/** Deep-freezes `data` when it is plain data and answers whether it did (whether it can be shared). */
export const freezeData = (data: unknown): boolean => {
  if (!isPlain(data, 0)) return false
  freezeAll(data)
  return true
}
