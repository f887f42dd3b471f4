// The report page in a real browser (Debian's headless `chromium`, driven by playwright-core): for a planted fixture
// and for bytes-llama-6m (a tokenizer: stopwords marked), no console error, no request leaves the page, every
// figure's SVG is there with one mark per layer, per token and per configuration, counted from the references and
// the inputs the test gives; screenshots in the light, dark and print themes land in test-output/report-browser/.
// Heavy (a browser and two fixture reports, ~20 s): run by `npm run test:heavy`, not `npm test`. Without chromium it
// skips with a message, or fails under CI=true.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import { Model } from "../../src/engine/model.js";
import { buildReport } from "../../src/report/html-data.js";
import { renderReportHtml } from "../../src/report/html.js";
import { readQuantComparisons } from "../../src/report/figures-quantize.js";
import { loadTokenizer } from "../../src/tokenizer/tokenizer.js";
import { readTextCorpus } from "../../src/data/index.js";
import { fixturePath, readReference, repoRoot, skipWithoutFixtures } from "../fixtures.js";

/** The browser: $CHROMIUM, else `chromium` on the PATH (Debian's package). */
function findChromium(): string | undefined {
  if (process.env.CHROMIUM) return existsSync(process.env.CHROMIUM) ? process.env.CHROMIUM : undefined;
  try {
    return (
      execFileSync("sh", ["-c", "command -v chromium || command -v chromium-browser"], { encoding: "utf8" }).trim() ||
      undefined
    );
  } catch {
    return undefined;
  }
}
const executable = findChromium();
if (!executable && process.env.CI === "true") throw new Error("chromium not found (required under CI=true)");
const skip =
  skipWithoutFixtures ||
  (executable
    ? false
    : `chromium not found (${process.env.CHROMIUM ? `CHROMIUM=${process.env.CHROMIUM}` : "PATH"}): ` +
      "apt-get install chromium, or set CHROMIUM to its path");

const outDir = join(repoRoot, "test-output", "report-browser");
// An origin that cannot resolve: the page is served to the browser from the test, and anything else it asks for
// would go out to the network.
const ORIGIN = "http://report.invalid";

let browser: Browser | undefined;
before(async () => {
  if (skip) return;
  mkdirSync(outDir, { recursive: true });
  browser = await chromium.launch({ executablePath: executable, args: ["--no-sandbox"] });
});
after(() => browser?.close());

const TOP = 8;
const SWEEP = [0, 0.5, 1, 2, 3];
const BLOCKS = [32, 64, 128, 256];

interface Opened {
  page: Page;
  /** URLs other than the page's own that the page asked for. */
  requests: string[];
  errors: string[];
}

/** Serves `html` at ORIGIN/name and opens it with every other request recorded and refused. */
async function open(html: string, name: string): Promise<Opened> {
  const page = await browser!.newPage({ viewport: { width: 1100, height: 900 } });
  const requests: string[] = [],
    errors: string[] = [];
  const url = `${ORIGIN}/${name}`;
  await page.route("**/*", (route) => {
    if (route.request().url() === url) return route.fulfill({ contentType: "text/html; charset=utf-8", body: html });
    requests.push(route.request().url());
    return route.abort();
  });
  // A WebSocket is not a routed request.
  page.on("websocket", (ws) => requests.push(ws.url()));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url, { waitUntil: "load" });
  return { page, requests, errors };
}

/** The number of items of a named vega mark inside a figure, and that the figure's SVG has a visible size. */
async function marks(page: Page, figure: string, mark: string): Promise<number> {
  const svg = page.locator(`#${figure} .chart svg`);
  assert.equal(await svg.count(), 1, `${figure}: one SVG`);
  const box = (await svg.boundingBox())!;
  assert.ok(box.width > 200 && box.height > 100, `${figure}: the SVG is ${box.width}×${box.height}`);
  return page.locator(`#${figure} g.${mark}_marks > *`).count();
}

const axisLabels = (axis: Locator) => axis.locator(".role-axis-label text").allTextContents();

/** A reader cannot tell two ticks apart that read the same ("+1%", "+1%"): every axis's labels are distinct. */
async function distinctTicks(page: Page) {
  for (const axis of await page.locator("figure g.role-axis[aria-label]").all()) {
    const labels = await axisLabels(axis);
    assert.equal(new Set(labels).size, labels.length, `${await axis.getAttribute("aria-label")}: ${labels.join(" ")}`);
  }
}

async function screenshots(page: Page, name: string) {
  for (const colorScheme of ["light", "dark"] as const) {
    await page.emulateMedia({ colorScheme });
    await page.screenshot({ path: join(outDir, `${name}-${colorScheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ media: "print", colorScheme: "dark" });
  await page.screenshot({ path: join(outDir, `${name}-print.png`), fullPage: true });
}

async function report(name: string, extra: Partial<Parameters<typeof buildReport>[1]> = {}) {
  const model = Model.open(fixturePath(name));
  try {
    const ref = readReference(name);
    return await buildReport(model, {
      label: fixturePath(name),
      prompts: [{ label: "reference ids", ids: ref.input_ids }],
      threshold: ref.threshold,
      maxIterations: 10,
      top: TOP,
      sweepScale: SWEEP,
      ...extra,
    });
  } finally {
    model.close();
  }
}

function compareFile(): string {
  const path = join(outDir, "compare.json");
  writeFileSync(
    path,
    JSON.stringify({
      version: 1,
      baseline: { perplexity: 5 },
      configurations: BLOCKS.flatMap((b, i) =>
        ["rtn", "nf4"].map((method, m) => ({
          method,
          bits: 4,
          block: b,
          perplexity: 5.1 + 0.2 * i + 0.1 * m,
          bytes: 1000 - 10 * i,
          bitsPerWeight: 4 + 16 / b,
        })),
      ),
    }),
  );
  return path;
}

test("planted-llama-bf16's report in chromium: offline, no console error, every figure's marks", { skip }, async () => {
  const name = "planted-llama-bf16";
  const ref = readReference(name);
  const L = ref.layers.length;
  const html = await renderReportHtml(await report(name, { quantization: readQuantComparisons([compareFile()]) }));
  writeFileSync(join(outDir, `${name}.html`), html);
  const { page, requests, errors } = await open(html, `${name}.html`);
  try {
    // Figure 3: a point per layer for the input and for the output.
    assert.equal(await marks(page, "figure-3", "spikes"), 2 * L);
    // Figures 2 and 4: a panel per super activation, a point per layer for each line (the original model, zeroed,
    // and the scan's pass for an activation a later pass found).
    assert.equal(
      await page.locator("#figure-4 g[class*='activation'][class$='_marks']").count(),
      ref.superActivations.length,
    );
    for (let i = 0; i < ref.superActivations.length; i++) {
      const lines = ref.superActivations[i].iteration > 1 ? 3 : 2;
      assert.equal(await marks(page, "figure-4", `activation${i}`), lines * L, `activation ${i}`);
    }
    // Figure 5: a bar per token, TOP rises and TOP falls (the vocabulary has more than 2·TOP tokens that move).
    assert.equal(await marks(page, "figure-5", "shift_tokens"), 2 * TOP);
    assert.equal(await page.locator("#figure-5 g.stopword_mass_marks").count(), 0, "no tokenizer: no stopword mass");
    // Figure 6: a point per factor; Figure 7: a point per configuration.
    assert.equal(await marks(page, "figure-6", "sweep"), SWEEP.length);
    assert.equal(await marks(page, "figure-7", "quantization"), 2 * BLOCKS.length);
    // Hover text without script: every data point carries a <title>.
    assert.equal(await page.locator("#figure-3 g.spikes_marks > path > title").count(), 2 * L);
    await distinctTicks(page);
    await screenshots(page, name);
    assert.deepEqual(requests, []);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("bytes-llama-6m's report in chromium: tokens by text, the stopword mass, the text's sweep", { skip }, async () => {
  const name = "bytes-llama-6m";
  const ref = readReference(name);
  const tokenizer = loadTokenizer(fixturePath(name))!;
  const corpus = readTextCorpus(fixturePath(name, "heldout.txt"));
  const r = await report(name, { tokenizer, perplexity: { corpus, ctx: 128, maxTokens: 512 } });
  const html = await renderReportHtml(r);
  writeFileSync(join(outDir, `${name}.html`), html);
  const { page, requests, errors } = await open(html, `${name}.html`);
  try {
    assert.equal(await marks(page, "figure-3", "spikes"), 2 * ref.layers.length);
    // Fewer than TOP tokens fall here (report-html.test.ts checks which against the reference): a bar per token of
    // the figure, each labelled with its text, largest rise first.
    const tokens = r.figures.shift!.tokens;
    assert.ok(tokens.length > TOP);
    assert.equal(await marks(page, "figure-5", "shift_tokens"), tokens.length);
    const byChange = [...tokens].sort((a, b) => b.after - b.before - (a.after - a.before));
    assert.deepEqual(
      await axisLabels(page.locator("#figure-5 g[aria-label^='Y-axis for a discrete']")),
      byChange.map((t) => t.label),
    );
    // A stopword's bar may be too short to show its colour: its label is bold.
    const weights = await page
      .locator("#figure-5 g[aria-label^='Y-axis for a discrete'] .role-axis-label text")
      .evaluateAll((texts) => texts.map((t) => t.getAttribute("font-weight")));
    assert.deepEqual(
      weights,
      byChange.map((t) => (t.stopword ? "bold" : "normal")),
    );
    assert.ok(
      tokens.some((t) => t.stopword),
      "the figure has a stopword to mark",
    );
    assert.equal(await page.locator("#figure-5 g.stopword_mass_marks > *").count(), 2, "before and after");
    assert.equal(await marks(page, "figure-6", "sweep"), SWEEP.length);
    assert.equal(await page.locator("#figure-7").count(), 0, "no --quantize-compare: no Figure 7");
    await distinctTicks(page);
    await screenshots(page, name);
    assert.deepEqual(requests, []);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("the page's own URL is the only request, and a page that asks for more is caught", { skip }, async () => {
  // The guard itself: a page with an external image and a console error must be seen as such.
  const { page, requests, errors } = await open(
    `<!doctype html><img src="https://example.com/x.png"><script>console.error("boom")</script>`,
    "bad.html",
  );
  await page.close();
  assert.deepEqual(requests, ["https://example.com/x.png"]);
  assert.ok(errors.includes("boom"), errors.join("; "));
  assert.ok(existsSync(outDir));
});
