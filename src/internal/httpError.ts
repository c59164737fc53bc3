/**
 * The errors that cross HTTP, declared once: a `Schema.TaggedError` whose status is its HttpApiSchema
 * annotation, and whose `HttpServerRespondable` (what a plain HttpServer / HttpRouter app answers when
 * the error reaches it) is derived from that same annotation.
 *
 * A refusal (a 4xx: no session, a bad token, a cross-site request) is an answer, not a failure of the
 * code, and the library allocates most of them once, at module load, so that refusing allocates nothing:
 * the stack such an instance would carry points at the import that loaded the module, and a log of the
 * 401 would send its reader there. Instances of a 4xx class carry as their `stack` only their name and
 * message (Effect's `Cause.pretty` still adds the spans the error failed in). A 5xx (`StoreError`) keeps
 * the stack of where it was made: it is a failure someone may need to trace.
 *
 * The identifier names the error's schema in an OpenAPI document (`components/schemas`): it carries no
 * `/` (written `~1` there) and differs from `@effect/platform`'s `HttpApiError` identifiers, so
 * `EffectSessions<Tag>`.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/** A `Schema.TaggedError` class whose instances are `HttpServerRespondable`. */
export type Class<Self, Tag extends string, Fields extends Schema.Struct.Fields> =
  & Schema.TaggedErrorClass<Self, Tag, { readonly _tag: Schema.tag<Tag> } & Fields>
  // the mixin form (`any[]`) is what lets a class extend the intersection and see both instance types
  & (new(...args: Array<any>) => Respondable)

/** An error's own response: it never fails. */
export interface Respondable extends HttpServerRespondable.Respondable {
  [HttpServerRespondable.symbol](): Effect.Effect<HttpServerResponse.HttpServerResponse>
}

/**
 * `Schema.TaggedError<Self>(identifier)(tag, fields)` annotated with `status`, answering an empty
 * response of that status (with `headers`) when it reaches the HTTP server.
 */
export const TaggedError = <Self>(identifier: string) =>
<Tag extends string, Fields extends Schema.Struct.Fields>(
  tag: Tag,
  fields: Fields,
  options: { readonly status: number; readonly headers?: Readonly<Record<string, string>> | undefined }
): Class<Self, Tag, Fields> => {
  const base = Schema.TaggedError<never>(identifier)(
    tag,
    fields,
    HttpApiSchema.annotations({ status: options.status })
  ) as unknown as Schema.TaggedErrorClass<Self, Tag, { readonly _tag: Schema.tag<Tag> } & Fields>
  // derived from the annotation, so that the status is written once; one response serves every instance
  const response = Effect.succeed(HttpServerResponse.empty({
    status: HttpApiSchema.getStatusErrorAST(base.ast),
    ...(options.headers === undefined ? {} : { headers: options.headers })
  }))
  Object.defineProperty(base.prototype, HttpServerRespondable.symbol, {
    value: () => response,
    enumerable: false,
    writable: false,
    configurable: false
  })
  return (options.status < 500 ? refusal(base) : base) as Class<Self, Tag, Fields>
}

// The class whose instances' `stack` is their first line only. Set once per instance, in the constructor
// (after the fields, which a `message` getter may read), as V8 sets its own: non-enumerable and writable.
const refusal = <C extends new(...args: Array<any>) => Error>(base: C): C =>
  class Refusal extends base {
    constructor(...args: Array<any>) {
      super(...args)
      Object.defineProperty(this, "stack", {
        value: this.message === "" ? this.name : `${this.name}: ${this.message}`,
        enumerable: false,
        writable: true,
        configurable: true
      })
    }
  }
