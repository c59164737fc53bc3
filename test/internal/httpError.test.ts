import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Logger, Schema } from "effect"
import { BadSignature } from "../../src/Auth.js"
import * as HttpError from "../../src/internal/httpError.js"
import { CsrfRejected } from "../../src/layers/Csrf.js"
import { Unauthorized } from "../../src/layers/Http.js"
import { Conflict, Expired, NotFound } from "../../src/Session.js"
import { StoreError } from "../../src/Store.js"

const errors = [
  [new BadSignature({ reason: "Signature" }), BadSignature, 401],
  [new NotFound(), NotFound, 401],
  [new Expired(), Expired, 401],
  [new Unauthorized(), Unauthorized, 401],
  [new CsrfRejected({ reason: "CrossSite" }), CsrfRejected, 403],
  [new Conflict(), Conflict, 409],
  [new StoreError({ reason: "Unavailable", message: "down" }), StoreError, 503]
] as const

describe("HttpError", () => {
  it.effect("every error with a status answers the status of its schema annotation", () =>
    Effect.gen(function*() {
      for (const [error, schema, status] of errors) {
        expect(HttpApiSchema.getStatusErrorAST(schema.ast)).toBe(status)
        expect(HttpServerRespondable.isRespondable(error)).toBe(true)
        const response = yield* HttpServerRespondable.toResponse(error)
        expect(response.status).toBe(status)
      }
      const outage = yield* HttpServerRespondable.toResponse(errors[6][0])
      expect(outage.headers["retry-after"]).toBe("1")
    }))

  it.effect("derives the response from the annotation, and keeps the schema a tagged error", () =>
    Effect.gen(function*() {
      class Teapot extends HttpError.TaggedError<Teapot>("test/Teapot")("Teapot", { brew: Schema.String }, {
        status: 418,
        headers: { "x-brew": "tea" }
      }) {}
      const teapot = new Teapot({ brew: "green" })
      expect(teapot._tag).toBe("Teapot")
      expect(teapot).toBeInstanceOf(Error)
      expect(Schema.decodeUnknownSync(Teapot)({ _tag: "Teapot", brew: "black" }).brew).toBe("black")
      const response = yield* HttpServerRespondable.toResponse(teapot)
      expect(response.status).toBe(418)
      expect(response.headers["x-brew"]).toBe("tea")
      const failed = yield* Effect.flip(teapot)
      expect(failed).toBe(teapot)
    }))

  it.effect("a refusal (4xx) logs its name and message, not the stack of wherever it was allocated", () =>
    Effect.gen(function*() {
      const logged: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ cause }) => logged.push(Cause.pretty(cause)))
      )
      for (const [error, , status] of errors) {
        if (status >= 500) continue
        logged.length = 0
        yield* Effect.logError(Cause.fail(error)).pipe(Effect.provide(capture))
        yield* Effect.failCause(Cause.fail(error)).pipe(
          Effect.tapErrorCause(Effect.logError),
          Effect.ignore,
          Effect.provide(capture)
        )
        expect(error.stack).toBe(`${error.name}: ${error.message}`)
        expect(logged.join("\n")).not.toMatch(/\.ts:\d+/)
        expect(logged.at(-1)).toContain(`${error.name}: ${error.message}`)
      }
    }))

  it.effect("a 5xx keeps the stack of where it was made: it is a failure someone may need to trace", () =>
    Effect.sync(() => {
      expect(new StoreError({ reason: "Unavailable", message: "down" }).stack).toMatch(/httpError\.test\.ts:\d+/)
    }))
})
