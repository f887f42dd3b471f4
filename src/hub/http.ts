// The one `fetch` every Hub request goes through (ours and @huggingface/hub's): it adds the token for the
// Hub's own origin only, follows redirects itself so the token never travels to another host (the Hub
// sends LFS files to a CDN), bounds the wait for an answer and for each piece of a body, and retries
// transient failures (connection errors, 408/429/5xx) with exponential backoff or the server's Retry-After.

export interface Timeouts {
  /** Longest wait from sending a request to its response headers (connecting included). */
  connectMs: number;
  /** Longest wait for the next piece of a response body. */
  idleMs: number;
}

export interface RetryPolicy {
  /** Attempts after the first one, for a failed request and for a broken download. */
  retries: number;
  /** First wait; doubled after each failure, up to MAX_BACKOFF_MS. */
  backoffMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 10_000, idleMs: 30_000 };
export const DEFAULT_RETRY: RetryPolicy = { retries: 5, backoffMs: 1_000 };
const MAX_BACKOFF_MS = 8_000; // as Python's http_backoff
const MAX_RETRY_AFTER_MS = 60_000;
const MAX_REDIRECTS = 10;
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

/** A request or body that failed on the network (not an HTTP status): worth retrying or resuming. */
export class TransferError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransferError";
  }
}

export interface HubFetchOptions {
  base: typeof fetch;
  /** The Hub's base URL: the token goes to this origin only. */
  endpoint: string;
  token?: string;
  timeouts: Timeouts;
  retry: RetryPolicy;
}

export function backoff(policy: RetryPolicy, failures: number): number {
  return Math.min(policy.backoffMs * 2 ** Math.max(0, failures - 1), MAX_BACKOFF_MS);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retry-After in seconds or as an HTTP date, capped; undefined when absent or unreadable. */
function retryAfterMs(res: Response): number | undefined {
  const h = res.headers.get("retry-after")?.trim();
  if (!h) return undefined;
  const ms = /^\d+$/.test(h) ? Number(h) * 1000 : Date.parse(h) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

/** The cause inside fetch's TypeError("fetch failed"): "connect ECONNREFUSED 1.2.3.4:443", "UND_ERR_SOCKET: …". */
export function describeNetworkError(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err?.cause;
  if (!cause?.message) return err?.message ?? String(e);
  return cause.code && !cause.message.includes(cause.code) ? `${cause.code}: ${cause.message}` : cause.message;
}

export function hubFetch(o: HubFetchOptions): typeof fetch {
  const hubOrigin = new URL(o.endpoint).origin;

  /** One request, no redirects followed, the wait for its headers bounded. */
  async function once(url: URL, init: RequestInit): Promise<{ res: Response; controller: AbortController }> {
    const controller = new AbortController();
    const caller = init.signal;
    caller?.addEventListener("abort", () => controller.abort(caller.reason), { once: true });
    const timer = setTimeout(
      () => controller.abort(new TransferError(`no response from ${url.host} within ${o.timeouts.connectMs} ms`)),
      o.timeouts.connectMs,
    );
    try {
      const res = await o.base(url, { ...init, redirect: "manual", signal: controller.signal });
      return { res, controller };
    } catch (e) {
      if (caller?.aborted || e instanceof TransferError) throw e;
      throw new TransferError(`could not reach ${url.host} (${describeNetworkError(e)})`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `once`, repeated on transient failures. */
  async function withRetries(url: URL, init: RequestInit): Promise<{ res: Response; controller: AbortController }> {
    for (let failures = 1; ; failures++) {
      let got: { res: Response; controller: AbortController } | undefined;
      try {
        got = await once(url, init);
      } catch (e) {
        if (!(e instanceof TransferError) || failures > o.retry.retries) throw e;
      }
      if (got && (!TRANSIENT_STATUS.has(got.res.status) || failures > o.retry.retries)) return got;
      const wait = (got && retryAfterMs(got.res)) ?? backoff(o.retry, failures);
      await got?.res.body?.cancel().catch(() => {});
      await sleep(wait);
    }
  }

  return async (input, init = {}) => {
    const request = input instanceof Request ? input : undefined;
    let url = new URL(request ? request.url : String(input));
    const headers = new Headers(init.headers ?? request?.headers);
    if (o.token && url.origin === hubOrigin && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${o.token}`);
    }
    let { method = request?.method ?? "GET", body } = init;
    for (let hops = 0; ; hops++) {
      const { res, controller } = await withRetries(url, { ...init, method, body, headers });
      const location = res.headers.get("location");
      if (!REDIRECT_STATUS.has(res.status) || !location) return watchBody(res, url, controller, o.timeouts.idleMs);
      await res.body?.cancel().catch(() => {});
      if (hops === MAX_REDIRECTS) throw new TransferError(`more than ${MAX_REDIRECTS} redirects, the last to ${url}`);
      const next = new URL(location, url);
      if (next.origin !== url.origin) headers.delete("authorization");
      if (res.status === 303 || (method === "POST" && res.status !== 307 && res.status !== 308)) {
        method = "GET";
        body = undefined;
      }
      url = next;
    }
  };
}

/** The response with a body that fails (TransferError) when the server goes quiet or the connection breaks. */
function watchBody(res: Response, url: URL, controller: AbortController, idleMs: number): Response {
  if (!res.body || NULL_BODY_STATUS.has(res.status)) return res;
  const reader = res.body.getReader();
  let received = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(out) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TransferError(`no data from ${url.host} for ${idleMs} ms`)), idleMs);
      });
      try {
        const next = await Promise.race([reader.read(), idle]);
        if (next.done) out.close();
        else {
          received += next.value.length;
          out.enqueue(next.value);
        }
      } catch (e) {
        const err =
          e instanceof TransferError
            ? e
            : new TransferError(`connection to ${url.host} broke after ${received} bytes (${describeNetworkError(e)})`);
        controller.abort(err);
        out.error(err);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  const watched = new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  Object.defineProperty(watched, "url", { value: url.href }); // @huggingface/hub names it in its errors
  return watched;
}
