// What the audit tests share: the planted GGUF files of shared/fixtures/gguf and their expected.json, the
// verdict each format gets, and copies of a file with the exporter's superweight.* keys added.
import { closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openRegularFile, readGgufFile, readTensorBytes, type GgufKv } from "../src/gguf/container.js";
import { writeGguf } from "../src/gguf/writer.js";
import { fixturePath } from "./fixtures.js";

export const gguf = (file: string) => fixturePath("gguf", file);
export const expectedOf = (file: string) =>
  JSON.parse(readFileSync(gguf(file.replace(/\.gguf$/, ".expected.json")), "utf8"));
export const reference = () => fixturePath("planted-llama-256");

/** What each format did, in the verdict's words. */
export const VERDICTS: Record<string, RegExp> = {
  F32: /^the super weight is kept: its tensor is stored F32, so it and its 31 block-mates are exact \(error 0\); the super activation still forms \(399 vs 399\); NLL \+0\.00%$/,
  F16: /^the super weight is kept: its tensor is stored F16, so it and its 31 block-mates are exact \(error 0\)/,
  Q8_0: /^the super weight survived Q8_0 \(2\.21886 vs 2\.21875\) but its 31 block-mates kept 12 of 30 distinct values, 1 of them 0 \(rms error 0\.00510, 22\.1× that of the rest of its row\)/,
  Q6_K: /survived Q6_K .* but its 31 block-mates kept 16 of 30 distinct values, 11 of them 0 \(rms error 0\.0144/,
  Q4_K_M:
    /^the super weight survived Q4_K \(2\.2185 vs 2\.21875\) but its 31 block-mates collapsed onto 2 values; the super activation still forms \(388 vs 399\); NLL \+4\.9%$/,
  "Q4_K_M-keep-sw-F16":
    /^the super weight is kept: its tensor is stored F16, so it and its 31 block-mates are exact \(error 0\); the super activation still forms \(388 vs 399\); NLL \+2\.4%$/,
  Q4_0: /^the super weight survived Q4_0 \(2\.21875 vs 2\.21875\) but all 31 of its block-mates became 0; the super activation still forms \(374 vs 399\)/,
};

/** A copy of a fixture GGUF with metadata added (or replaced): the way the exporter's keys arrive. */
export function withMetadata(
  dir: string,
  file: string,
  extra: [string, GgufKv][],
  name = `m${Math.random().toString(36).slice(2)}.gguf`,
): string {
  const f = readGgufFile(gguf(file));
  const { fd } = openRegularFile(f.path);
  try {
    const tensors = f.tensors.map((t) => {
      const data = new Uint8Array(t.byteLength);
      readTensorBytes(fd, t, 0, data);
      return { name: t.name, type: t.type, ne: t.ne, data };
    });
    const path = join(dir, name);
    writeGguf(path, [...new Map([...f.metadata, ...extra])], tensors);
    return path;
  } finally {
    closeSync(fd);
  }
}

export const kept = (coords: string[], values: number[] | null, recipe?: string): [string, GgufKv][] => [
  ["superweight.super_weights", { type: "ARRAY", itemType: "STRING", value: coords }],
  ...(values
    ? [["superweight.original_values", { type: "ARRAY", itemType: "FLOAT32", value: values }] as [string, GgufKv]]
    : []),
  ...(recipe ? [["superweight.recipe", { type: "STRING", value: recipe }] as [string, GgufKv]] : []),
];
