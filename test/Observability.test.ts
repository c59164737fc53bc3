/**
 * Spans and metrics of the sessions service, read through a real OpenTelemetry SDK (in-memory span
 * exporter) and Effect's metric registry. Metrics are process-wide, so every check is a difference
 * between a reading before and after the operation under test.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Metric, MetricState, Option, Redacted, Schema } from "effect"
import * as SessionsTest from "../src/layers/Test.js"
import * as Session from "../src/Session.js"

class AppSession extends Session.Tag<AppSession>()("test/Observability", {
  data: Schema.Struct({ n: Schema.Number })
}) {}

const counter = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (state) => state.count)

const rejected = (reason: string) => counter(Metric.tagged(Session.metrics.rejected, "reason", reason))

const latencyCount = (operation: string) =>
  Effect.map(
    Metric.value(Metric.tagged(Session.metrics.storeLatency, "operation", operation)),
    (state: MetricState.MetricState.Histogram) => state.count
  )

const tracing = () => {
  const exporter = new InMemorySpanExporter()
  const layer = NodeSdk.layer(() => ({
    resource: { serviceName: "effect-sessions-test" },
    spanProcessor: new SimpleSpanProcessor(exporter)
  }))
  return { exporter, layer }
}

describe("observability", () => {
  it.effect("counts issued, validated and rejected tokens by reason", () =>
    Effect.gen(function*() {
      const sessions = yield* AppSession
      const before = {
        issued: yield* counter(Session.metrics.issued),
        validated: yield* counter(Session.metrics.validated),
        badSignature: yield* rejected("bad_signature"),
        notFound: yield* rejected("not_found"),
        expired: yield* rejected("expired")
      }
      const { session, token } = yield* sessions.issue("u1", { n: 1 })
      yield* sessions.get(token)
      yield* sessions.resolve(token)
      yield* Effect.flip(sessions.get("garbage"))
      yield* Effect.flip(sessions.get(token + "x"))
      yield* sessions.clear(session)
      yield* Effect.flip(sessions.get(token))

      expect((yield* counter(Session.metrics.issued)) - before.issued).toBe(1)
      expect((yield* counter(Session.metrics.validated)) - before.validated).toBe(2)
      expect((yield* rejected("bad_signature")) - before.badSignature).toBe(2)
      expect((yield* rejected("not_found")) - before.notFound).toBe(1)
      expect((yield* rejected("expired")) - before.expired).toBe(0)
    }).pipe(Effect.provide(SessionsTest.layer(AppSession))))

  it.effect("times every store operation and counts store failures", () =>
    Effect.gen(function*() {
      const sessions = yield* AppSession
      const outage = yield* SessionsTest.Outage
      const fetches = yield* latencyCount("fetch")
      const saves = yield* latencyCount("save")
      const errors = yield* counter(Metric.tagged(Session.metrics.storeErrors, "operation", "fetch"))
      const { token } = yield* sessions.issue("u1", { n: 1 })
      yield* sessions.get(token)
      yield* sessions.get(token)
      yield* outage.start
      expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("StoreError")
      yield* outage.end
      expect((yield* latencyCount("fetch")) - fetches).toBe(3)
      expect((yield* latencyCount("save")) - saves).toBe(1)
      expect((yield* counter(Metric.tagged(Session.metrics.storeErrors, "operation", "fetch"))) - errors).toBe(1)
    }).pipe(Effect.provide(SessionsTest.layer(AppSession))))

  it.effect("metrics: false records nothing", () =>
    Effect.gen(function*() {
      const sessions = yield* AppSession
      const issued = yield* counter(Session.metrics.issued)
      const fetches = yield* latencyCount("fetch")
      const { token } = yield* sessions.issue("u1", { n: 1 })
      yield* sessions.get(token)
      expect(yield* counter(Session.metrics.issued)).toBe(issued)
      expect(yield* latencyCount("fetch")).toBe(fetches)
    }).pipe(Effect.provide(SessionsTest.layer(AppSession, { metrics: false }))))

  it.live("writes get a span; reads annotate the enclosing span; no span carries an id or token", () => {
    const { exporter, layer } = tracing()
    return Effect.gen(function*() {
      const sessions = yield* AppSession
      const { session, token } = yield* Effect.withSpan(sessions.issue("user-7", { n: 1 }), "login")
      yield* Effect.withSpan(sessions.get(token), "request")
      yield* Effect.withSpan(Effect.flip(sessions.get(token.slice(0, -2))), "forged")
      yield* sessions.extend(session)
      yield* sessions.clear(session)

      const spans = exporter.getFinishedSpans()
      const names = spans.map((span) => span.name)
      expect(names).toEqual(expect.arrayContaining(["Sessions.issue", "Sessions.extend", "Sessions.clear"]))
      expect(names).not.toContain("Sessions.get")
      const attributes = (name: string) => spans.find((span) => span.name === name)?.attributes
      expect(attributes("request")?.["session.result"]).toBe("valid")
      expect(attributes("forged")?.["session.result"]).toBe("BadSignature")
      const everything = JSON.stringify(spans.map((span) => ({ name: span.name, attributes: span.attributes })))
      expect(everything).not.toContain(Redacted.value(session.id))
      expect(everything).not.toContain(token)
      expect(everything).not.toContain(token.slice(token.indexOf(".") + 1))
    }).pipe(Effect.provide(Layer.merge(SessionsTest.layer(AppSession), layer)))
  })

  it.live("traceReads: true gives reads a span of their own", () => {
    const { exporter, layer } = tracing()
    return Effect.gen(function*() {
      const sessions = yield* AppSession
      const { token } = yield* sessions.issue("user-7", { n: 1 })
      yield* sessions.get(token)
      yield* sessions.resolve(token)
      const spans = exporter.getFinishedSpans()
      const get = spans.find((span) => span.name === "Sessions.get")
      expect(get?.attributes["session.result"]).toBe("valid")
      expect(Option.isSome(Option.fromNullable(spans.find((span) => span.name === "Sessions.resolve")))).toBe(true)
    }).pipe(Effect.provide(Layer.merge(SessionsTest.layer(AppSession, { traceReads: true }), layer)))
  })
})
