// Opening a checkpoint's files safely, in this process (the hardening tests do the same through the CLI):
// only regular files, symlinks followed, named pipes / folders / devices refused, text files bounded and UTF-8,
// JSON objects only, and names from an index kept inside the folder. Each refusal word for word.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError } from "../src/errors.js";
import { exists, inside, readJsonObject, readText, regularFile } from "../src/checkpoint/files.js";

const dir = mkdtempSync(join(tmpdir(), "sw-checkpoint-files-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string) => join(dir, `${counter++}-${name}`);

function refuses(fn: () => unknown, path: string, code: string, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
    assert.equal(e.message, `${path}: ${message}`);
    assert.equal(e.code, code);
    assert.equal(e.file, path);
    return true;
  });
}

test("regularFile returns the stat of a file, or of what a symlink points to", () => {
  const path = fresh("file");
  writeFileSync(path, "12345");
  assert.equal(regularFile(path).size, 5);
  const link = fresh("link");
  symlinkSync(path, link);
  assert.equal(regularFile(link).size, 5);
});

test("regularFile names what is there instead of a regular file", () => {
  const missing = fresh("missing");
  refuses(() => regularFile(missing), missing, "MISSING_FILE", "does not exist");
  const dangling = fresh("dangling");
  symlinkSync(join(dir, "nothing-here"), dangling);
  refuses(() => regularFile(dangling), dangling, "BROKEN_LINK", "is a symlink to nothing (a half-deleted download?)");
  const a = fresh("loop-a"),
    b = fresh("loop-b");
  symlinkSync(b, a);
  symlinkSync(a, b);
  refuses(() => regularFile(a), a, "BROKEN_LINK", "is a symlink loop");
  const folder = fresh("folder");
  mkdirSync(folder);
  refuses(() => regularFile(folder), folder, "NOT_A_FILE", "is a folder, not a regular file");
  const pipe = fresh("pipe");
  execFileSync("mkfifo", [pipe]);
  refuses(() => regularFile(pipe), pipe, "NOT_A_FILE", "is a named pipe, not a regular file");
  refuses(() => regularFile("/dev/zero"), "/dev/zero", "NOT_A_FILE", "is a device, not a regular file");
  // A path through a file (ENOTDIR) is an I/O error that says what the system said.
  const through = join(fresh("plain"), "x");
  writeFileSync(through.slice(0, -2), "");
  assert.throws(
    () => regularFile(through),
    (e: unknown) =>
      e instanceof CheckpointError && e.code === "IO" && e.message.startsWith(`${through}: cannot be read: ENOTDIR`),
  );
});

test("exists counts a dangling symlink, and nothing else that is absent", () => {
  const dangling = fresh("dangling");
  symlinkSync(join(dir, "gone"), dangling);
  assert.equal(exists(dangling), true);
  assert.equal(exists(fresh("absent")), false);
  assert.equal(exists(dir), true);
});

test("readText: a bounded UTF-8 text file", () => {
  const path = fresh("text");
  writeFileSync(path, "héllo");
  assert.equal(readText(path), "héllo");
  assert.equal(readText(path, 6), "héllo"); // 6 bytes: at the bound is allowed
  refuses(() => readText(path, 5), path, "FILE_TOO_LARGE", "is 6 bytes, more than the 5 a file of this kind may hold");
  const bad = fresh("latin1");
  writeFileSync(bad, Buffer.from([0x68, 0xe9, 0x6c]));
  refuses(() => readText(bad), bad, "NOT_UTF8", "is not valid UTF-8 text");
  refuses(() => readText("/dev/zero"), "/dev/zero", "NOT_A_FILE", "is a device, not a regular file");
});

test("readJsonObject: JSON, and an object, or the caller's code", () => {
  const write = (text: string) => {
    const path = fresh("json");
    writeFileSync(path, text);
    return path;
  };
  assert.deepEqual(readJsonObject(write('{"a": [1]}'), "BAD_CONFIG"), { a: [1] });
  const broken = write('{"a": ');
  assert.throws(
    () => readJsonObject(broken, "BAD_CONFIG"),
    (e: unknown) =>
      e instanceof CheckpointError && e.code === "BAD_CONFIG" && e.message.startsWith(`${broken}: not valid JSON (`),
  );
  for (const text of ["[1]", "null", "3", '"x"']) {
    const path = write(text);
    refuses(() => readJsonObject(path, "BAD_INDEX"), path, "BAD_INDEX", "is not a JSON object");
  }
});

test("inside keeps an index's file names within the folder", () => {
  assert.equal(inside("/ckpt", "model-00001.safetensors", "/ckpt/index.json"), "/ckpt/model-00001.safetensors");
  assert.equal(inside("/ckpt", "sub/w.safetensors", "/ckpt/index.json"), "/ckpt/sub/w.safetensors");
  assert.equal(inside("/ckpt", "a/../w.safetensors", "/ckpt/index.json"), "/ckpt/w.safetensors");
  assert.equal(inside("/ckpt", "..w.safetensors", "/ckpt/index.json"), "/ckpt/..w.safetensors");
  for (const name of ["", "../w.safetensors", "a/../../w.safetensors", "/etc/passwd", "w\0.safetensors", ".."])
    refuses(
      () => inside("/ckpt", name, "/ckpt/index.json"),
      "/ckpt/index.json",
      "OUTSIDE_FOLDER",
      `names file ${JSON.stringify(name)}, which is outside the checkpoint folder`,
    );
});
