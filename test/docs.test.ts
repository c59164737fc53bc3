/**
 * The docs compile: every TypeScript block of README.md and of the JSDoc in src/ (a ```ts fence, inside an
 * `@example` or in the prose) is type-checked as a module of its own, with the repository's compiler
 * options, against this package's source under the import paths a user writes (`effect-sessions/Session`,
 * `effect-sessions/layers/Redis`: the `exports` of package.json, mapped to src/). All blocks are checked in
 * one TypeScript program, so the suite pays for the platform's types once. A failure names the block by
 * the README line or the source file and line where its code starts.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import ts from "typescript"

const repo = Path.resolve(import.meta.dirname, "..")
const packageName = "effect-sessions"
const exportPaths = Object.keys(
  (JSON.parse(Fs.readFileSync(Path.join(repo, "package.json"), "utf8")) as { exports: Record<string, unknown> })
    .exports
)

/** A block of code in the docs: where it is (`README.md:131`), and its text. */
interface Block {
  readonly origin: string
  /** the line of the file the block's first line of code is on */
  readonly line: number
  readonly code: string
}

const fence = /^(\s*)```(ts|typescript)\s*$/
const fenceEnd = /^\s*```\s*$/

/** The TypeScript blocks in `lines` (already stripped of any comment markup), dedented by their fence. */
const blocksIn = (file: string, lines: ReadonlyArray<string>, lineOf: (index: number) => number): Array<Block> => {
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = fence.exec(lines[i]!)
    if (open === null) continue
    const indent = open[1]!.length
    let end = i + 1
    while (end < lines.length && !fenceEnd.test(lines[end]!)) end++
    if (end === lines.length) throw new Error(`${file}:${lineOf(i)}: a \`\`\`ts block is never closed`)
    const code = lines.slice(i + 1, end).map((line) => line.slice(Math.min(indent, line.search(/\S|$/))))
    blocks.push({ origin: file, line: lineOf(i + 1), code: `${code.join("\n")}\n` })
    i = end
  }
  return blocks
}

const readmeText = () => Fs.readFileSync(Path.join(repo, "README.md"), "utf8")

const readmeBlocks = (): Array<Block> => blocksIn("README.md", readmeText().split("\n"), (i) => i + 1)

/** The JSDoc comments of a source file: their lines without the ` * ` markup, and the line each starts on. */
const jsDocs = (text: string): Array<{ readonly lines: Array<string>; readonly line: number }> =>
  [...text.matchAll(/\/\*\*[\s\S]*?\*\//g)].map((match) => ({
    line: text.slice(0, match.index).split("\n").length,
    lines: match[0].split("\n").map((line) => line.replace(/^\s*(\/\*\*|\*\/|\*(?!\/))? ?/, "").replace(/\*\/$/, ""))
  }))

const sourceFiles = (): Array<string> =>
  (Fs.readdirSync(Path.join(repo, "src"), { recursive: true }) as Array<string>)
    .filter((file) => file.endsWith(".ts"))
    .map((file) => Path.join("src", file))
    .sort()

const jsDocBlocks = (): Array<Block> =>
  sourceFiles().flatMap((file) =>
    jsDocs(Fs.readFileSync(Path.join(repo, file), "utf8")).flatMap((doc) =>
      blocksIn(file, doc.lines, (i) => doc.line + i)
    )
  )

/** `@example` tags whose text has no ```ts block: docs the checker could not see. */
const examplesWithoutCode = (): Array<string> =>
  sourceFiles().flatMap((file) =>
    jsDocs(Fs.readFileSync(Path.join(repo, file), "utf8")).flatMap((doc) =>
      doc.lines.flatMap((line, i) => {
        if (!/^\s*@example\b/.test(line)) return []
        const next = doc.lines.findIndex((other, j) => j > i && /^\s*@\w+/.test(other))
        const body = doc.lines.slice(i + 1, next < 0 ? undefined : next)
        return body.some((other) => fence.test(other)) ? [] : [`${file}:${doc.line + i}`]
      })
    )
  )

/**
 * The source file a package import path (`effect-sessions/layers/Http`) stands for, when package.json
 * exports that path; otherwise `undefined`.
 */
const sourceOf = (specifier: string): string | undefined => {
  if (!specifier.startsWith(`${packageName}/`)) return undefined
  const subpath = `.${specifier.slice(packageName.length)}`
  const exported = exportPaths.some((path) =>
    path.endsWith("/*") ? subpath.startsWith(path.slice(0, -1)) && subpath.length > path.length - 1 : subpath === path
  )
  return exported ? Path.join(repo, "src", `${subpath.slice(2)}.ts`) : undefined
}

/** The file of the repository a block says it is, by a first line such as `// examples/custom-store.ts`. */
const namedFile = (block: Block): string | undefined => /^\/\/ ([\w.-]+(?:\/[\w.-]+)*\.ts)\n/.exec(block.code)?.[1]

/**
 * Where a block is checked from: the file it names (so that its relative imports resolve), else a name of
 * its own inside the repository (so that node_modules resolves).
 */
const virtualName = (block: Block, index: number) => {
  const named = namedFile(block)
  return Path.join(repo, named ?? `docs-check/${index}-${block.origin.replace(/[^\w.-]/g, "_")}-${block.line}.ts`)
}

/** A file of this repository as a user's project writes it: the package's import paths for `../src/…`. */
const asPackage = (source: string) => source.replace(/"(?:\.\.\/)+src\/([^"]+)\.js"/g, `"${packageName}/$1"`)

const compilerOptions = (): ts.CompilerOptions => {
  const config = ts.getParsedCommandLineOfConfigFile(Path.join(repo, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"))
    }
  })
  if (config === undefined) throw new Error("tsconfig.json could not be read")
  return {
    ...config.options,
    noEmit: true,
    // A block is a module of its own, even one without an import.
    moduleDetection: ts.ModuleDetectionKind.Force,
    // Docs declare what they show (`const program = ...`) without always using it.
    noUnusedLocals: false,
    noUnusedParameters: false
  }
}

/** Type-checks `blocks` in one program; answers the diagnostics of each, by the block's own lines. */
const check = (blocks: ReadonlyArray<Block>): Array<ReadonlyArray<string>> => {
  const options = compilerOptions()
  const names = blocks.map(virtualName)
  const virtual = new Map(names.map((name, i) => [name, blocks[i]!.code]))
  if (virtual.size < names.length) throw new Error("two blocks name the same file")
  const host = ts.createCompilerHost(options, true)
  const { fileExists, getSourceFile, readFile } = host
  host.fileExists = (name) => virtual.has(name) || fileExists(name)
  host.readFile = (name) => virtual.get(name) ?? readFile(name)
  host.getSourceFile = (name, language, ...rest) => {
    const code = virtual.get(name)
    return code === undefined ? getSourceFile(name, language, ...rest) : ts.createSourceFile(name, code, language)
  }
  const cache = ts.createModuleResolutionCache(repo, (name) => name, options)
  host.resolveModuleNameLiterals = (literals, containing, redirected, options, file) =>
    literals.map((literal) => {
      if (literal.text.startsWith(`${packageName}/`)) {
        const source = sourceOf(literal.text)
        return source !== undefined && Fs.existsSync(source)
          ? { resolvedModule: { resolvedFileName: source, extension: ts.Extension.Ts, isExternalLibraryImport: false } }
          : { resolvedModule: undefined }
      }
      const mode = ts.getModeForUsageLocation(file, literal, options)
      return ts.resolveModuleName(literal.text, containing, options, host, cache, redirected, mode)
    })
  const program = ts.createProgram({ rootNames: names, options, host })
  return names.map((name, i) => {
    const source = program.getSourceFile(name)!
    const block = blocks[i]!
    return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map((d) => {
      const at = source.getLineAndCharacterOfPosition(d.start ?? 0)
      const message = ts.flattenDiagnosticMessageText(d.messageText, "\n  ")
      return `${block.origin}:${block.line + at.line}:${at.character + 1} TS${d.code}: ${message}`
    })
  })
}

/** The public modules, as their import paths name them: src/*.ts, src/layers/*.ts, src/testing/*.ts. */
const publicModules = (): Array<string> =>
  sourceFiles().map((file) => file.slice("src/".length, -".ts".length))
    .filter((module) => /^(?:(?:layers|testing)\/)?[^/]+$/.test(module))

const readme = readmeBlocks()
const docs = jsDocBlocks()

// Blocks that must fail, checked in the same program: the checker sees a type error, an import path
// the package does not export and one whose module does not exist.
const broken: ReadonlyArray<Block> = [
  {
    origin: "canary:type-error",
    line: 1,
    code: `import * as Auth from "effect-sessions/Auth"\nexport const id: number = Auth.randomId()\n`
  },
  { origin: "canary:not-exported", line: 1, code: `import * as Core from "effect-sessions/internal/core"\n` },
  { origin: "canary:no-such-module", line: 1, code: `import * as Nope from "effect-sessions/layers/Nope"\n` }
]

describe("docs type-check", () => {
  let results: Array<ReadonlyArray<string>> = []
  beforeAll(() => {
    results = check([...readme, ...docs, ...broken])
  }, 120_000)
  const resultOf = (index: number) => results[index] ?? ["the block was not checked"]

  it("finds the README's blocks and the JSDoc's", () => {
    expect(readme.length).toBeGreaterThan(8)
    expect(docs.map((block) => block.origin)).toContain("src/layers/HttpApi.ts")
  })

  it("refuses a block with a type error or an import path package.json does not export", () => {
    const offset = readme.length + docs.length
    expect(resultOf(offset).join("\n")).toMatch(/^canary:type-error:2:\d+ TS2322: Type 'string' is not assignable/)
    expect(resultOf(offset + 1).join("\n")).toMatch(/TS2307: Cannot find module 'effect-sessions\/internal\/core'/)
    expect(resultOf(offset + 2).join("\n")).toMatch(/TS2307: Cannot find module 'effect-sessions\/layers\/Nope'/)
  })

  it("a README block that names a file of the repository is that file, with the package's import paths", () => {
    const named = readme.flatMap((block) => {
      const file = namedFile(block)
      return file !== undefined && Fs.existsSync(Path.join(repo, file)) ? [{ block, file }] : []
    })
    expect(named.map(({ file }) => file)).toContain("examples/custom-store.ts")
    for (const { block, file } of named) {
      const code = block.code.slice(block.code.indexOf("\n") + 1)
      expect(code, `${block.origin}:${block.line}`).toBe(asPackage(Fs.readFileSync(Path.join(repo, file), "utf8")))
    }
  })

  it("every import path the README names is exported by package.json and has its module", () => {
    const text = readmeText()
    const named = [...text.matchAll(/\beffect-sessions\/[\w/]+/g)].map((match) => match[0])
    const missing = [...new Set(named)].filter((path) => {
      const source = sourceOf(path)
      return source === undefined || !Fs.existsSync(source)
    })
    expect(named.length).toBeGreaterThan(10)
    expect(missing).toEqual([])
  })

  it("the README's list of import paths names every public module", () => {
    const text = readmeText()
    const start = text.indexOf("Import each module by its path:")
    const paragraph = text.slice(start, text.indexOf("\n\n", start))
    const listed = [...paragraph.matchAll(/`(?:effect-sessions)?\/([\w/]+)`/g)].map((match) => match[1]).sort()
    expect(start).toBeGreaterThan(0)
    expect(listed).toEqual(publicModules().sort())
  })

  it("every @example holds a ```ts block", () => {
    expect(examplesWithoutCode()).toEqual([])
  })

  for (const [index, block] of [...readme, ...docs].entries()) {
    it(`${block.origin}:${block.line}`, () => {
      expect(resultOf(index)).toEqual([])
    })
  }
})

// The README's command for the API reference (Development), run into a temp dir. Started when the file
// loads, so that it runs beside the type-check above rather than after it.
const referenceDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-sessions-docs-"))
const reference = new Promise<Error | undefined>((resolve) =>
  ChildProcess.execFile(
    "npm",
    ["run", "--silent", "docs", "--", "--out", referenceDir],
    { cwd: repo, timeout: 170_000 },
    (error, stdout, stderr) => resolve(error === null ? undefined : new Error(`${error.message}\n${stdout}${stderr}`))
  )
)

/** A page's text, without its markup. */
const textOf = (html: string) =>
  html.replace(/<[^>]*>/g, " ").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"")
    .replace(/&#39;/g, "'").replace(/&amp;/g, "&").replace(/\s+/g, " ")

describe("the API reference", () => {
  it("`npm run docs` writes a page for every public module, with its JSDoc", { timeout: 180_000 }, async () => {
    expect(readmeText()).toContain("`npm run docs`")
    const failure = await reference
    if (failure !== undefined) throw failure
    for (const module of publicModules()) {
      const page = Path.join(referenceDir, "modules", `${module.replace(/\//g, "_")}.html`)
      expect(Fs.existsSync(page), page).toBe(true)
      // the first line of the module's own JSDoc, as the page shows it
      const summary = Fs.readFileSync(Path.join(repo, "src", `${module}.ts`), "utf8").split("\n")[1]!
        .replace(/^ \* /, "").replace(/`/g, "").replace(/\{@link (\w+)\}/g, "$1").trim()
      expect(textOf(Fs.readFileSync(page, "utf8")).replace(/\s+([,.:;)])/g, "$1"), module).toContain(summary)
    }
  })

  afterAll(() => Fs.rmSync(referenceDir, { recursive: true, force: true }))
})
