/**
 * The metrics of the sessions service (`Session.metrics` re-exports them), and how they are recorded
 * without rebuilding a metric key per update.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import type { Operation, StoreError } from "../Store.js"

// The histogram under `metrics.storeLatency`, which is built from it exactly as
// `Metric.timerWithBoundaries` would build it (a `time_unit` label, durations in milliseconds). The
// service updates the histogram directly with a constant label array per operation: the same metric key
// as `Metric.tagged(metrics.storeLatency, "operation", op)`, without rebuilding and hashing that key on
// every update. (Two histogram keys are equal only when they share one boundaries object.)
const storeLatencyHistogram = Metric.histogram(
  "effect_sessions_store_latency",
  MetricBoundaries.fromIterable([0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000]),
  "Store operation latency in milliseconds, by operation"
)

export const metrics = {
  issued: Metric.counter("effect_sessions_issued_total", { description: "Sessions issued", incremental: true }),
  validated: Metric.counter("effect_sessions_validated_total", {
    description: "Tokens that resolved to a valid session",
    incremental: true
  }),
  rejected: Metric.counter("effect_sessions_rejected_total", { description: "Tokens refused", incremental: true }),
  refreshed: Metric.counter("effect_sessions_refreshed_total", {
    description: "Reads that wrote the session (rolling expiry, idle timeout)",
    incremental: true
  }),
  rotated: Metric.counter("effect_sessions_rotated_total", { description: "Session ids renewed", incremental: true }),
  storeErrors: Metric.counter("effect_sessions_store_errors_total", {
    description: "Store failures",
    incremental: true
  }),
  storeLatency: Metric.mapInput(
    Metric.tagged(storeLatencyHistogram, "time_unit", "milliseconds"),
    Duration.toMillis
  )
} as const

const labels = (key: string, value: string): ReadonlyArray<MetricLabel.MetricLabel> => [MetricLabel.make(key, value)]

// Constant label arrays: a metric caches its key per label array (by identity), so an update with one of
// these costs a lookup, where `Metric.tagged(...)` would build and hash the key again on every update.
const rejectedLabels = {
  BadSignature: labels("reason", "bad_signature"),
  NotFound: labels("reason", "not_found"),
  Expired: labels("reason", "expired")
} as const

const operations: ReadonlyArray<Operation> = ["fetch", "save", "delete", "list", "deleteUser"]

const noTags: ReadonlyArray<never> = []

const byOperation = <X>(f: (op: Operation) => X) =>
  Object.fromEntries(operations.map((op) => [op, f(op)])) as Record<Operation, X>

const latencyLabels = byOperation((op) => [
  MetricLabel.make("time_unit", "milliseconds"),
  MetricLabel.make("operation", op)
])
const errorLabels = byOperation((op) => labels("operation", op))

/**
 * Records a store operation that started at `start` (`performance.now()`): a duration, not a time of
 * day, so measured with the monotonic clock even under TestClock. Failures are timed too: a timeout is
 * exactly the latency worth seeing.
 */
export const recordStore = (op: Operation, start: number, failed: boolean): void => {
  storeLatencyHistogram.unsafeUpdate(performance.now() - start, latencyLabels[op])
  if (failed) metrics.storeErrors.unsafeUpdate(1, errorLabels[op])
}

/** Times `effect`, the store operation `op` (for `Store.around`). */
export const observeStore = <A>(op: Operation, effect: Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.onExit(effect, (exit) => {
      recordStore(op, start, exit._tag === "Failure")
      return Effect.void
    })
  })

/** A read's outcome: valid, refused (and why), or the store could not answer. */
export type Outcome = keyof typeof rejectedLabels | "valid" | "StoreError"

/**
 * Counts a read's outcome (when `observe`) and notes it on the current span (the HTTP server's request
 * span, or the read's own with `traceReads`), synchronously: the read path builds no effect for it.
 */
export const account = (fiber: Fiber.RuntimeFiber<unknown, unknown>, observe: boolean, outcome: Outcome): void => {
  if (observe) {
    if (outcome === "valid") metrics.validated.unsafeUpdate(1, noTags)
    else if (outcome !== "StoreError") metrics.rejected.unsafeUpdate(1, rejectedLabels[outcome])
  }
  const span = fiber.currentSpan
  if (span !== undefined && span._tag === "Span") span.attribute("session.result", outcome)
}
