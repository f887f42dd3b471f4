// Where the shared reference fixtures live, and how a test skips (or, under CI=true, fails) without them.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root: this file is compiled to dist/test/fixtures.js. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** ../shared/fixtures beside the repository, or SUPERWEIGHT_FIXTURES (a copy of the repository elsewhere, e.g.
 * the mutation-testing sandbox). */
export const fixturesRoot = resolve(process.env.SUPERWEIGHT_FIXTURES || resolve(repoRoot, "..", "shared", "fixtures"));
const present = existsSync(fixturesRoot);

if (!present && process.env.CI === "true") {
  throw new Error(`reference fixtures missing: ${fixturesRoot} (required under CI=true)`);
}

/** `skip` option for node:test: a message naming the folder when the fixtures are absent. */
export const skipWithoutFixtures: string | false = present ? false : `reference fixtures not found at ${fixturesRoot}`;

export function fixturePath(name: string, ...rest: string[]): string {
  return join(fixturesRoot, name, ...rest);
}

/** Fixtures of the newer model types (Qwen3, Gemma2/3, OLMo2, sparse MoE) sit one folder down. */
export const NEWER = "newer";

/** Every fixture folder that carries a reference.json: the top-level ones, then `newer/…` (named so). */
export function fixtureNames(): string[] {
  if (!present) return [];
  const within = (dir: string) => {
    const root = join(fixturesRoot, dir);
    if (!existsSync(root)) return [];
    return readdirSync(root)
      .filter((n) => existsSync(join(root, n, "reference.json")))
      .sort()
      .map((n) => (dir ? `${dir}/${n}` : n));
  };
  return [...within(""), ...within(NEWER)];
}

/** A fixture's folder name without the `newer/` part. */
export function baseName(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}

export function readReference<T = any>(name: string): T {
  return JSON.parse(readFileSync(fixturePath(name, "reference.json"), "utf8")) as T;
}
