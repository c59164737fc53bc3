import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted, Schema } from "effect"
import * as Auth from "../../src/Auth.js"
import { fastPath } from "../../src/internal/registry.js"
import * as Memory from "../../src/layers/Memory.js"
import * as Session from "../../src/Session.js"

const ports = Layer.merge(Memory.layer(), Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }))

describe("the fast-path registry", () => {
  it.scoped("knows the service object it registered, and no copy of it", () =>
    Effect.gen(function*() {
      const sessions = yield* Session.make(Schema.Struct({ n: Schema.Number }))
      expect(fastPath(sessions)).toBeTypeOf("function")
      expect(fastPath({ ...sessions })).toBeUndefined()
      expect(fastPath(Object.assign(Object.create(null), sessions))).toBeUndefined()
      expect(Object.getOwnPropertySymbols(sessions)).toEqual([])
      // with traceReads every read goes through `resolve`, which opens the read's span
      const traced = yield* Session.make(Schema.Struct({ n: Schema.Number }), { traceReads: true })
      expect(fastPath(traced)).toBeUndefined()
    }).pipe(Effect.provide(ports)))
})
