/**
 * `npm pack` of this checkout, as a user's checkout would pack it: in a copy without `dist/` (so that a
 * test never deletes or rewrites the `dist/` of the working tree, which a concurrent `npm run build` may be
 * using), building through `prepack`.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const execFile = promisify(ChildProcess.execFile)

export const repo = fileURLToPath(new URL("../..", import.meta.url))

// What a user's checkout of the repository would not hand to `npm pack`: installs, git, build output, caches.
const notCopied = new Set(["node_modules", ".git", "dist", ".vitest"])

/** Runs `file` with `args` in `cwd`; a failure says what it printed. */
export const run = (
  file: string,
  args: ReadonlyArray<string>,
  cwd: string,
  timeout = 60_000,
  env: NodeJS.ProcessEnv = process.env
) =>
  execFile(file, args, { cwd, timeout, env, maxBuffer: 16 * 1024 * 1024 }).catch((error: unknown) => {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string }
    throw new Error(`${Path.basename(file)} ${args.join(" ")} failed:\n${stdout ?? ""}\n${stderr ?? ""}`, {
      cause: error
    })
  })

/** Packs the checkout into `dir` and answers the tarball's path. */
export const pack = async (dir: string): Promise<string> => {
  const checkout = Path.join(dir, "checkout")
  Fs.cpSync(repo, checkout, {
    recursive: true,
    filter: (source) => !notCopied.has(Path.relative(repo, source).split(Path.sep)[0]!)
  })
  Fs.symlinkSync(Path.join(repo, "node_modules"), Path.join(checkout, "node_modules"), "junction")
  await run("npm", ["pack", "--pack-destination", dir, "--loglevel=error"], checkout)
  const tarballs = Fs.readdirSync(dir).filter((name) => name.endsWith(".tgz"))
  if (tarballs.length !== 1) throw new Error(`npm pack made ${tarballs.length} tarballs`)
  return Path.join(dir, tarballs[0]!)
}
