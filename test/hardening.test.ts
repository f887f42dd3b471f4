// Every broken checkpoint or config gets a clear answer, as a user meets it through the CLI: exit status 2, one
// line naming the file and the fault, no stack, and the folder exactly as it was. By category: what used to
// crash, hang, print garbage, read outside the folder, accept an ambiguity or name the wrong thing.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigReader } from "../src/models/spec.js";
import { llama } from "../src/models/llama.js";
import { writeSafetensors } from "../src/checkpoint/writer.js";
import { assertRefused, cliSync, fingerprint, TINY_CONFIG, tinyTensors, userEnv, writeTiny } from "./tiny.js";

const root = mkdtempSync(join(tmpdir(), "sw-hardening-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (label: string) => join(root, `${n++}-${label}`);
const env = userEnv(join(root, "home"));
const ids = ["--ids", "1,4,7,2"];

/** `superweight <command> folder ...` is refused naming `file`, and leaves the folder as it was. */
function refused(command: string, folder: string, file: string, ...mentions: (string | RegExp)[]) {
  const before = fingerprint(folder);
  const r = cliSync([command, folder, ...ids], env, undefined, 30_000);
  assertRefused(r, file, ...mentions);
  assert.deepEqual(fingerprint(folder), before, "the folder is unchanged");
}

const withConfig = (label: string, change: Record<string, unknown>) =>
  writeTiny(fresh(label), { config: { ...TINY_CONFIG, ...change } });
const config = (folder: string) => join(folder, "config.json");
const weights = (folder: string) => join(folder, "model.safetensors");

describe("what used to crash", () => {
  test("num_hidden_layers 10⁹: refused at once, before any per-layer table is built", () => {
    const folder = withConfig("layers-1e9", { num_hidden_layers: 1_000_000_000 });
    const t0 = Date.now();
    refused("run", folder, config(folder), "1000000000 layers", "layers 0 to 1");
    assert.ok(Date.now() - t0 < 10_000);
  });
  test("model.safetensors a symlink loop, or a symlink to nothing (a half-deleted cache)", () => {
    const loop = writeTiny(fresh("loop"));
    unlinkSync(weights(loop));
    symlinkSync("model.safetensors", weights(loop));
    refused("run", loop, weights(loop), "symlink loop");
    const dangling = writeTiny(fresh("dangling"));
    unlinkSync(weights(dangling));
    symlinkSync("../blobs/gone", weights(dangling));
    refused("scan", dangling, weights(dangling), "symlink to nothing");
  });
});

describe("what used to hang", () => {
  test("model.safetensors a named pipe: refused at once", () => {
    const folder = writeTiny(fresh("fifo"));
    unlinkSync(weights(folder));
    execFileSync("mkfifo", [weights(folder)]);
    refused("run", folder, weights(folder), "named pipe");
  });
  test("config.json a named pipe, a folder, or /dev/zero", () => {
    for (const [label, make] of [
      ["fifo", (p: string) => execFileSync("mkfifo", [p])],
      ["dir", (p: string) => mkdirSync(p)],
      ["dev", (p: string) => symlinkSync("/dev/zero", p)],
    ] as [string, (p: string) => void][]) {
      const folder = writeTiny(fresh(`config-${label}`));
      unlinkSync(config(folder));
      make(config(folder));
      refused("run", folder, config(folder), "not a regular file");
    }
  });
});

describe("what used to print garbage", () => {
  const poisoned = (
    label: string,
    tensor: string,
    index: number,
    value: number,
    o: { config?: Record<string, unknown>; shards?: number } = {},
  ) => {
    const tensors = tinyTensors({ ...TINY_CONFIG, ...o.config });
    const t = tensors.find((x) => x.name === tensor);
    if (!t) throw new Error(`no tensor ${tensor}`);
    t.data[index] = value;
    return writeTiny(fresh(label), { config: { ...TINY_CONFIG, ...o.config }, tensors, shards: o.shards });
  };
  test("NaN in a down_proj weight: run and scan stop at it, naming the tensor and the element", () => {
    const folder = poisoned("nan-down", "model.layers.1.mlp.down_proj.weight", 3 * 16 + 5, NaN);
    for (const command of ["run", "scan"])
      refused(
        command,
        folder,
        folder,
        "NaN first appears at layer 1, down_proj_output",
        "model.layers.1.mlp.down_proj.weight holds 1 NaN value (first at [3, 5])",
        "--allow-non-finite",
      );
  });
  test("an infinite embedding of a prompt token, a NaN lm_head row, a NaN final norm, a NaN q bias, a NaN in one shard", () => {
    refused(
      "run",
      poisoned("inf-embed", "model.embed_tokens.weight", 4 * 8 + 2, Infinity),
      "",
      "layer 0, layer_input",
      "model.embed_tokens.weight holds 1 infinite value (first at [4, 2])",
    );
    refused(
      "run",
      poisoned("nan-head", "lm_head.weight", 7 * 8 + 1, NaN),
      "",
      "at the logits",
      "lm_head.weight holds 1 NaN value (first at [7, 1])",
    );
    refused(
      "run",
      poisoned("nan-norm", "model.norm.weight", 3, NaN),
      "",
      "at the logits",
      "model.norm.weight holds 1 NaN value (first at [3])",
    );
    const bias = { attention_bias: true };
    const tensors = tinyTensors(TINY_CONFIG);
    for (const l of [0, 1])
      for (const p of ["q", "k", "v", "o"])
        tensors.push({
          name: `model.layers.${l}.self_attn.${p}_proj.bias`,
          dtype: "F32",
          shape: [8],
          data: new Float32Array(8),
        });
    tensors.find((t) => t.name === "model.layers.0.self_attn.q_proj.bias")!.data[6] = NaN;
    refused(
      "run",
      writeTiny(fresh("nan-bias"), { config: { ...TINY_CONFIG, ...bias }, tensors }),
      "",
      "layer 0, attn_output",
      "model.layers.0.self_attn.q_proj.bias holds 1 NaN value (first at [6])",
    );
    refused(
      "scan",
      poisoned("nan-shard", "model.layers.0.mlp.up_proj.weight", 0, NaN, { shards: 3 }),
      "",
      "layer 0, down_proj_input",
      "model.layers.0.mlp.up_proj.weight holds 1 NaN value",
    );
  });
  test("--allow-non-finite goes on and shows the damage", () => {
    const folder = poisoned("allow", "lm_head.weight", 1, NaN);
    const r = cliSync(["run", folder, ...ids, "--json", "--allow-non-finite"], env);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(
      JSON.parse(r.stdout).nll.some((x: number | null) => x === null),
      "NaN shows (as null in JSON)",
    );
  });
  test("configs that make NaN: rope_theta 0 or negative, a linear factor 0, a negative rms_norm_eps, partial_rotary_factor 2", () => {
    for (const [label, change, field] of [
      ["theta0", { rope_theta: 0 }, "rope_theta"],
      ["theta-neg", { rope_theta: -5 }, "rope_theta"],
      ["factor0", { rope_scaling: { rope_type: "linear", factor: 0 } }, "rope_scaling.factor"],
      ["eps-neg", { rms_norm_eps: -1e-5 }, "rms_norm_eps"],
      ["partial2", { partial_rotary_factor: 2 }, "partial_rotary_factor"],
    ] as [string, Record<string, unknown>, string][]) {
      const folder = withConfig(label, change);
      refused("run", folder, config(folder), `field "${field}"`);
    }
  });
});

describe("what used to read outside the folder", () => {
  test("an index naming ../x, an absolute path or /dev/zero is refused before anything is opened", () => {
    for (const [label, name] of [
      ["parent", "../outside.safetensors"],
      ["abs", "/etc/passwd"],
      ["dev", "/dev/zero"],
      ["nested", "a/../../b.safetensors"],
    ]) {
      const folder = writeTiny(fresh(`index-${label}`), { shards: 2 });
      const indexPath = join(folder, "model.safetensors.index.json");
      const index = JSON.parse(readFileSync(indexPath, "utf8"));
      index.weight_map["lm_head.weight"] = name;
      writeFileSync(indexPath, JSON.stringify(index));
      refused("run", folder, indexPath, "outside the checkpoint folder", JSON.stringify(name));
    }
  });
});

describe("what used to accept an ambiguity", () => {
  test("a tensor named twice in a safetensors header", () => {
    const folder = writeTiny(fresh("dup"));
    const bytes = readFileSync(weights(folder));
    const n = Number(bytes.readBigUInt64LE(0));
    const json = bytes
      .subarray(8, 8 + n)
      .toString("utf8")
      .trimEnd();
    const norm = JSON.stringify(JSON.parse(json)["model.norm.weight"]);
    // The same name again (JSON.parse would silently keep the second).
    const twice = Buffer.from(`${json.slice(0, -1)},"model.norm.weight":${norm}}`);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(twice.length));
    writeFileSync(weights(folder), Buffer.concat([prefix, twice, bytes.subarray(8 + n)]));
    refused("run", folder, weights(folder), 'names tensor "model.norm.weight" twice');
  });
  test("bos_token_id outside the vocabulary; use_sliding_window with sliding_window -1", () => {
    const bos = withConfig("bos", { bos_token_id: 10 });
    refused("run", bos, config(bos), 'field "bos_token_id"', "outside the vocabulary");
    const qwen = writeTiny(fresh("qwen-window"), {
      config: { ...TINY_CONFIG, model_type: "qwen2", use_sliding_window: true, sliding_window: -1 },
      tensors: [
        ...tinyTensors(),
        ...[0, 1].flatMap((l) =>
          ["q", "k", "v"].map((p) => ({
            name: `model.layers.${l}.self_attn.${p}_proj.bias`,
            dtype: "F32" as const,
            shape: [8],
            data: new Float32Array(8),
          })),
        ),
      ],
    });
    refused("run", qwen, config(qwen), 'field "sliding_window"', "positive integer or null");
  });
  test("each family's window default is decided as transformers decides it", () => {
    const spec = (c: Record<string, unknown>) =>
      llama.config(new ConfigReader({ ...TINY_CONFIG, ...c }, "config.json"));
    assert.equal(
      spec({ model_type: "mistral" }).slidingWindow(0),
      4096,
      "Mistral without sliding_window: MistralConfig's 4096",
    );
    assert.equal(spec({ model_type: "mistral", sliding_window: null }).slidingWindow(0), undefined);
    const q = spec({ model_type: "qwen2", use_sliding_window: true, sliding_window: 4, max_window_layers: 1 });
    assert.deepEqual(
      [q.slidingWindow(0), q.slidingWindow(1)],
      [undefined, 4],
      "Qwen2 slides in layers ≥ max_window_layers",
    );
    assert.equal(
      spec({ model_type: "qwen2", use_sliding_window: false, sliding_window: 4 }).slidingWindow(1),
      undefined,
    );
    const typed = spec({
      model_type: "qwen2",
      use_sliding_window: true,
      sliding_window: 4,
      layer_types: ["sliding_attention", "full_attention"],
    });
    assert.deepEqual([typed.slidingWindow(0), typed.slidingWindow(1)], [4, undefined], "layer_types decides");
  });
});

describe("messages that point at the right thing", () => {
  test("num_attention_heads 0 or not dividing hidden_size names that field; no model_type says so", () => {
    const zero = withConfig("heads0", { num_attention_heads: 0 });
    refused("run", zero, config(zero), 'field "num_attention_heads" must be at least 1');
    const odd = withConfig("heads3", { num_attention_heads: 3, num_key_value_heads: 3 });
    refused("run", odd, config(odd), 'field "num_attention_heads" (3) must divide hidden_size (8)');
    const none = writeTiny(fresh("no-type"), { config: { ...TINY_CONFIG, model_type: undefined } });
    refused("run", none, config(none), 'has no "model_type"', "supported: llama");
  });
  test("an index that leaves out a tensor, or gives a file name of the wrong type, is reported on the index", () => {
    const omit = writeTiny(fresh("omit"), { shards: 2 });
    const indexPath = join(omit, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8"));
    delete index.weight_map["model.norm.weight"];
    writeFileSync(indexPath, JSON.stringify(index));
    refused("run", omit, indexPath, 'does not list tensor "model.norm.weight"', "the index is wrong");
    const typed = writeTiny(fresh("typed"), { shards: 2 });
    const index2 = JSON.parse(readFileSync(join(typed, "model.safetensors.index.json"), "utf8"));
    index2.weight_map["model.norm.weight"] = 7;
    writeFileSync(join(typed, "model.safetensors.index.json"), JSON.stringify(index2));
    refused("run", typed, join(typed, "model.safetensors.index.json"), 'gives "model.norm.weight" the file 7');
  });
  test("an empty tensor name", () => {
    const folder = writeTiny(fresh("empty-name"));
    const t = tinyTensors();
    writeSafetensors(weights(folder), [...t, { name: "", dtype: "F32", shape: [1], data: new Float32Array(1) }]);
    refused("run", folder, weights(folder), "empty name");
  });
});

describe("privacy and the CLI's edges", () => {
  test("run and scan write nothing: not in HOME, its caches, the temp folder, the working folder or the checkpoint", () => {
    const folder = writeTiny(fresh("private"));
    const home = join(root, "private-home"),
      cwd = join(root, "private-cwd");
    mkdirSync(cwd, { recursive: true });
    const e = userEnv(home);
    const before = { home: fingerprint(home), cwd: fingerprint(cwd), folder: fingerprint(folder) };
    for (const command of ["run", "scan"]) assert.equal(cliSync([command, folder, ...ids], e, cwd).status, 0);
    assert.deepEqual({ home: fingerprint(home), cwd: fingerprint(cwd), folder: fingerprint(folder) }, before);
  });
  test("usage errors exit 2: no command, an unknown option or command, --ids with an empty entry", () => {
    const folder = writeTiny(fresh("usage"));
    for (const args of [[], ["scan", folder, "--bogus"], ["frobnicate"], ["run", folder, "--ids", "1,,2"]]) {
      const r = cliSync(args, env);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    }
    assertRefused(cliSync(["run", folder, "--ids", "1,,2"], env), undefined, "--ids", "empty entry");
  });
  test("singular counts read as such; the help shows one default per option", () => {
    const folder = writeTiny(fresh("words"));
    const text = cliSync(["run", folder, "--ids", "1"], env).stdout;
    assert.match(text, /; 1 token in /);
    const help = cliSync(["scan", "--help"], env).stdout;
    const prompt = help.slice(help.indexOf("--prompt"), help.indexOf("--ids"));
    assert.equal(prompt.match(/default/g)?.length, 1, prompt);
  });
  test("a broken tokenizer.json does not block a run on token ids; a --prompt names the file", () => {
    const folder = writeTiny(fresh("broken-tokenizer"));
    writeFileSync(join(folder, "tokenizer.json"), "{ not json");
    assert.equal(cliSync(["run", folder, ...ids], env).status, 0);
    assertRefused(cliSync(["run", folder, "--prompt", "hello"], env), join(folder, "tokenizer.json"));
  });
});
